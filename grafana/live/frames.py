"""Prometheus answers -> what one panel draws: named series, a heatmap's bucket counts, table rows.

Names follow Grafana's ``legendFormat`` (``{{label}}`` placeholders; empty: the series' labels). A
heatmap target's cumulative ``le`` buckets become per-bucket counts, as Grafana's Prometheus datasource
does for ``format: heatmap``. Non-finite samples become nulls (gaps). At most ``max_series`` series per
query are kept, and the panel says how many were dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from tenantpulse.grafana.live.model import Panel, Target

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def legend(fmt: str, labels: Mapping[str, str]) -> str:
    if fmt:
        return _PLACEHOLDER.sub(lambda m: labels.get(m.group(1), ""), fmt)
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest else name or "value"


def number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _series(target: Target, data: Any, max_series: int) -> tuple[list[dict[str, Any]], int]:
    rows = list((data or {}).get("result") or [])
    out = []
    for row in rows[:max_series]:
        labels = row.get("metric") or {}
        points = row["values"] if "values" in row else [row["value"]] if "value" in row else []
        out.append(
            {
                "name": legend(target.legend, labels),
                "ref": target.ref,
                "labels": labels,
                "t": [float(p[0]) * 1000 for p in points],
                "v": [number(p[1]) for p in points],
            }
        )
    return out, max(0, len(rows) - max_series)


def _le(series: dict[str, Any]) -> float:
    bound = number(series["labels"].get("le"))
    return math.inf if bound is None else bound


def heatmap(series: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Cumulative ``le`` series -> {times, buckets (upper bounds), counts[bucket][time]}."""
    ordered = sorted((s for s in series if "le" in s["labels"]), key=_le)
    times = sorted({t for s in ordered for t in s["t"]})
    index = {t: i for i, t in enumerate(times)}
    cumulative = []
    for s in ordered:
        row: list[float | None] = [None] * len(times)
        for t, v in zip(s["t"], s["v"], strict=True):
            row[index[t]] = v
        cumulative.append(row)
    counts = []
    for b, row in enumerate(cumulative):
        below = cumulative[b - 1] if b else [0.0] * len(times)
        counts.append(
            [None if v is None or w is None else max(0.0, v - w) for v, w in zip(row, below, strict=True)]
        )
    return {"times": times, "buckets": [s["labels"]["le"] for s in ordered], "counts": counts}


def table(results: Sequence[tuple[Target, list[dict[str, Any]]]]) -> dict[str, Any]:
    """One row per label set, one value column per query, as Grafana's merge names it (``Value #A``: the
    panel's overrides give each column its display name and unit)."""
    label_names = sorted({k for _, ss in results for s in ss for k in s["labels"] if k != "__name__"})
    value_names = [f"Value #{t.ref}" for t, _ in results]
    rows: dict[tuple[str, ...], list[Any]] = {}
    for column, (_, ss) in enumerate(results):
        for s in ss:
            key = tuple(s["labels"].get(k, "") for k in label_names)
            row = rows.setdefault(key, [None] * len(value_names))
            row[column] = s["v"][-1] if s["v"] else None
    return {
        "columns": label_names + value_names,
        "labels": len(label_names),
        "rows": [list(key) + values for key, values in sorted(rows.items())],
    }


def frame(panel: Panel, results: Sequence[tuple[Target, Any]], max_series: int) -> dict[str, Any]:
    """What the page draws for ``panel``, from (target, Prometheus ``data`` or an error message)."""
    errors = [f"{t.ref}: {r}" for t, r in results if isinstance(r, str)]
    shaped: list[tuple[Target, list[dict[str, Any]]]] = []
    dropped = 0
    for target, data in results:
        if not isinstance(data, str):
            series, more = _series(target, data, max_series)
            shaped.append((target, series))
            dropped += more
    out: dict[str, Any] = {"errors": errors, "dropped": dropped}
    if panel.type == "table":
        out["table"] = table(shaped)
    elif panel.type == "heatmap":
        out["heatmap"] = heatmap([s for t, ss in shaped if t.heatmap for s in ss])
        out["series"] = [s for t, ss in shaped if not t.heatmap for s in ss]
    else:
        out["series"] = [s for _, ss in shaped for s in ss]
    for s in out.get("series", []):
        s.pop("labels", None)
    return out
