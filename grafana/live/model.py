"""A generated dashboard's JSON (Grafana's current model) -> what the live view queries and draws.

Only what the page needs is kept: each panel's grid position, title, queries, units, thresholds,
overrides and options, and the dashboard's variables, time range and refresh. Rows that Grafana keeps
collapsed hold their panels inside; the live view draws them open, at the positions they carry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tenantpulse.kernel.durations import parse_duration
from tenantpulse.kernel.errors import UsageError

PANEL_TYPES = ("timeseries", "stat", "gauge", "table", "heatmap", "text", "row")
DEFAULT_RANGE = 3600.0  # seconds, when a dashboard's time.from is not "now-<duration>"
_NOW_MINUS = re.compile(r"^now-(\w+)$")


@dataclass(frozen=True)
class Target:
    ref: str
    expr: str
    legend: str  # Grafana's legendFormat: "{{label}}" placeholders, or "" for the series' labels
    instant: bool  # an instant query at the range's end (tables), else a range query
    heatmap: bool  # format "heatmap": cumulative le buckets, drawn as per-bucket counts


@dataclass(frozen=True)
class Panel:
    id: int
    type: str
    targets: tuple[Target, ...]
    view: dict[str, Any]  # JSON for the page: title, grid, unit, thresholds, overrides, options


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    kind: str  # query, constant, custom, interval, textbox or datasource
    query: str
    default: str | None
    hidden: bool


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    tags: tuple[str, ...]
    range_seconds: float
    refresh_seconds: float | None
    variables: tuple[Variable, ...]
    panels: tuple[Panel, ...]

    def summary(self) -> dict[str, Any]:
        return {"uid": self.uid, "title": self.title, "tags": list(self.tags), "panels": len(self.panels)}


def _seconds(text: Any, default: float | None) -> float | None:
    try:
        return parse_duration(str(text)) if text else default
    except UsageError:
        return default


def _flatten(panels: list[Any]) -> Iterator[Mapping[str, Any]]:
    for panel in panels:
        if not isinstance(panel, Mapping):
            continue
        yield panel
        if panel.get("type") == "row":
            yield from _flatten(panel.get("panels") or [])


def _target(raw: Mapping[str, Any], index: int) -> Target | None:
    expr = raw.get("expr")
    if not isinstance(expr, str) or not expr.strip() or raw.get("hide"):
        return None
    return Target(
        ref=str(raw.get("refId") or chr(ord("A") + index % 26)),
        expr=expr,
        legend=str(raw.get("legendFormat") or ""),
        instant=bool(raw.get("instant")) and not raw.get("range"),
        heatmap=raw.get("format") == "heatmap",
    )


def _view(raw: Mapping[str, Any], panel_id: int) -> dict[str, Any]:
    field = raw.get("fieldConfig") or {}
    defaults = field.get("defaults") or {}
    grid = raw.get("gridPos") or {}
    options = raw.get("options")
    steps = (defaults.get("thresholds") or {}).get("steps") or []
    return {
        "id": panel_id,
        "type": raw.get("type"),
        "title": str(raw.get("title") or ""),
        "description": str(raw.get("description") or ""),
        "grid": {k: int(grid.get(k, d)) for k, d in (("x", 0), ("y", 0), ("w", 12), ("h", 8))},
        "unit": defaults.get("unit") or "",
        "decimals": defaults.get("decimals"),
        "noValue": defaults.get("noValue"),
        "min": defaults.get("min"),
        "max": defaults.get("max"),
        "color": defaults.get("color") or {},
        "custom": defaults.get("custom") or {},
        "thresholds": [{"color": s.get("color"), "value": s.get("value")} for s in steps],
        "overrides": field.get("overrides") or [],
        "options": options if isinstance(options, Mapping) else {},
    }


def _variable(raw: Mapping[str, Any]) -> Variable:
    current = raw.get("current") or {}
    value = current.get("value") if isinstance(current, Mapping) else None
    query = raw.get("query")
    if isinstance(query, Mapping):  # the current model's query variables: {"query": "...", "refId": ...}
        query = query.get("query")
    return Variable(
        name=str(raw["name"]),
        label=str(raw.get("label") or raw["name"]),
        kind=str(raw.get("type") or "query"),
        query=str(query or ""),
        default=str(value) if isinstance(value, str | int | float) and value != "" else None,
        hidden=raw.get("hide") == 2,
    )


def read(data: Mapping[str, Any]) -> Dashboard:
    """The live view's model of one dashboard's JSON data."""
    time_from = str((data.get("time") or {}).get("from") or "")
    match = _NOW_MINUS.match(time_from)
    panels = []
    for index, raw in enumerate(_flatten(list(data.get("panels") or []))):
        panel_id = int(raw.get("id") or index + 1)
        targets = [_target(t, i) for i, t in enumerate(raw.get("targets") or [])]
        view = _view(raw, panel_id)
        if raw.get("type") == "text":
            view["content"] = str((raw.get("options") or {}).get("content") or raw.get("content") or "")
        panels.append(Panel(panel_id, str(raw.get("type")), tuple(t for t in targets if t is not None), view))
    variables = [v for v in (data.get("templating") or {}).get("list") or [] if v.get("name")]
    return Dashboard(
        uid=str(data["uid"]),
        title=str(data.get("title") or data["uid"]),
        tags=tuple(str(t) for t in data.get("tags") or []),
        range_seconds=(_seconds(match.group(1), DEFAULT_RANGE) if match else None) or DEFAULT_RANGE,
        refresh_seconds=_seconds(data.get("refresh"), None),
        variables=tuple(_variable(v) for v in variables),
        panels=tuple(panels),
    )
