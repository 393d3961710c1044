"""The dashboards spec (YAML or Python dicts), checked before anything is generated.

Every refusal is a ``SpecError`` (``kernel.errors``) naming the dashboard and component (its title)
as ``source``, the field (``components[2].indicator`` inside a dashboard) and the valid choices, so
the CLI prints one clear line (exit 2, prefixed with the file from ``load``) and the API answers 422.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenantpulse.conventions import catalog as c
from tenantpulse.conventions import indicators
from tenantpulse.grafana import layout
from tenantpulse.kernel.errors import SpecError, UsageError
from tenantpulse.kernel.yamlfile import read_yaml

COMPONENT_TYPES: tuple[str, ...] = (
    "chart",
    "kpi",
    "gauge",
    "table",
    "heatmap",
    "anomaly",
    "forecast",
    "score",
)
COMPONENT_FIELDS: tuple[str, ...] = (
    "type",
    "title",
    "description",
    "indicator",
    "indicators",
    "metric",
    "labels",
    "quantile",
    "width",
    "height",
    "min",
    "max",
)
# What each component type reads: one indicator, several, or a catalog metric.
NEEDS: dict[str, str] = {
    "chart": "indicators or metric",
    "kpi": "indicator or metric",
    "gauge": "indicator or metric",
    "table": "indicators",
    "heatmap": "metric (a histogram)",
    "anomaly": "indicator",
    "forecast": "indicator",
    "score": "indicators (optional)",
}
MAX_COMPONENTS = 100
MAX_HEIGHT = 50
UID_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")

Refuse = Callable[[str, str], SpecError]
"""``err(field, reason)``: a ``SpecError`` in the place being checked."""


def dashboard_error(field: str, reason: str, dashboard: str | None = None) -> SpecError:
    """A ``SpecError`` in ``dashboard`` (its name, or ``#i`` before it has one; None: the whole spec)."""
    return SpecError(field, reason, f"dashboard {dashboard!r}" if dashboard else None, item=dashboard)


# The real-time dashboard's widgets, in their default order (``grafana.realtime`` builds one per name).
WIDGETS: tuple[str, ...] = (
    "system_health",
    "user_activity",
    "revenue",
    "errors",
    "latency",
    "conversion",
    "unique_users",
    "anomalies",
    "forecasts",
)


@dataclass(frozen=True)
class Component:
    """One validated panel request."""

    type: str
    title: str = ""  # empty: the panel's own default title
    description: str = ""
    indicators: tuple[str, ...] = ()
    metric: c.Metric | None = None
    labels: tuple[tuple[str, str], ...] = ()
    quantile: float = 0.95
    width: int | None = None
    height: int | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class CustomDashboard:
    name: str
    layout: str = "grid"
    components: tuple[Component, ...] = ()
    uid: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RealtimeDashboard:
    tenant: str | None = None
    widgets: tuple[str, ...] = tuple(WIDGETS)
    title: str | None = None


@dataclass(frozen=True)
class GrafanaTarget:
    """Where the provisioned datasources point and which folder the dashboards land in."""

    prometheus_url: str = "http://prometheus:9090"
    jaeger_url: str = "http://jaeger-query:16686"
    folder: str = "tenantpulse"
    dashboards_path: str = "/var/lib/grafana/dashboards/tenantpulse"


@dataclass(frozen=True)
class DashboardsSpec:
    grafana: GrafanaTarget = field(default_factory=GrafanaTarget)
    realtime: tuple[RealtimeDashboard, ...] = ()
    dashboards: tuple[CustomDashboard, ...] = ()
    slo_spec: Path | None = None


def _choices(values: Sequence[str]) -> str:
    return ", ".join(values)


def _unknown_keys(data: Mapping[str, Any], allowed: Sequence[str], err: Refuse) -> None:
    extra = sorted(set(data) - set(allowed))
    if extra:
        raise err(extra[0], f"unknown field; valid: {_choices(allowed)}")


def _int_in(value: Any, low: int, high: int, name: str, err: Refuse) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise err(name, f"must be an integer from {low} to {high}, got {value!r}")
    return value


def _indicator(name: Any, fieldname: str, err: Refuse) -> str:
    if not isinstance(name, str) or name not in indicators.INDICATORS:
        raise err(fieldname, f"unknown indicator {name!r}; valid: {_choices(sorted(indicators.INDICATORS))}")
    return name


def component(data: Any, index: int = 0, dashboard: str | None = None) -> Component:
    """Validate one component mapping, the ``index``-th of ``dashboard``'s components."""
    title = data.get("title") if isinstance(data, Mapping) else None
    where = [f"dashboard {dashboard!r}"] if dashboard is not None else []
    where += [f"component {title!r}"] if isinstance(title, str) and title else []

    def err(fieldname: str, reason: str) -> SpecError:
        return SpecError(f"components[{index}].{fieldname}", reason, ", ".join(where) or None, item=dashboard)

    if not isinstance(data, Mapping):
        raise err("type", f"a component must be a mapping with a type, got {type(data).__name__}")
    _unknown_keys(data, COMPONENT_FIELDS, err)
    kind = data.get("type")
    if kind not in COMPONENT_TYPES:
        raise err("type", f"unknown component type {kind!r}; valid: {_choices(COMPONENT_TYPES)}")

    names: list[str] = []
    if "indicator" in data:
        names.append(_indicator(data["indicator"], "indicator", err))
    if "indicators" in data:
        raw = data["indicators"]
        if not isinstance(raw, list) or not raw or len(raw) > 26:
            raise err("indicators", "must be a list of 1 to 26 indicator names")
        names += [_indicator(n, "indicators", err) for n in raw]

    metric = None
    if "metric" in data:
        metric = c.BY_NAME.get(data["metric"]) if isinstance(data["metric"], str) else None
        if metric is None:
            raise err("metric", f"unknown metric {data['metric']!r}; valid: {_choices(sorted(c.BY_NAME))}")
    labels = data.get("labels", {})
    if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
        raise err("labels", "must be a mapping of label name to string value")
    if labels:
        if metric is None:
            raise err("labels", "labels filter a catalog metric; set metric as well")
        allowed = [lbl for lbl in metric.labels if lbl != c.TENANT]
        bad = sorted(set(labels) - set(allowed))
        if bad:
            raise err(
                "labels", f"{metric.name} has no label {bad[0]!r} to filter; valid: {_choices(allowed)}"
            )

    _check_sources(kind, names, metric, data, err)
    quantile = data.get("quantile", 0.95)
    if isinstance(quantile, bool) or not isinstance(quantile, int | float) or not 0 < quantile < 1:
        raise err("quantile", f"must be a number between 0 and 1, got {quantile!r}")
    for bound in ("min", "max"):
        if bound in data and (isinstance(data[bound], bool) or not isinstance(data[bound], int | float)):
            raise err(bound, f"must be a number, got {data[bound]!r}")
    if title is not None and not isinstance(title, str):
        raise err("title", "must be a string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise err("description", "must be a string")
    return Component(
        type=kind,
        title=title or "",
        description=description,
        indicators=tuple(names),
        metric=metric,
        labels=tuple(sorted(labels.items())),
        quantile=float(quantile),
        width=_int_in(data["width"], 1, layout.GRID_WIDTH, "width", err) if "width" in data else None,
        height=_int_in(data["height"], 1, MAX_HEIGHT, "height", err) if "height" in data else None,
        min=data.get("min"),
        max=data.get("max"),
    )


def _check_sources(
    kind: str, names: list[str], metric: c.Metric | None, data: Mapping[str, Any], err: Refuse
) -> None:
    """Each type reads what it can draw: one value for kpi/gauge, a histogram for heatmaps, ..."""
    need = NEEDS[kind]
    if names and metric is not None:
        raise err("metric", f"a {kind} reads either indicators or a metric, not both")
    if kind in ("kpi", "gauge") and len(names) + (metric is not None) != 1:
        raise err("indicator", f"a {kind} shows one value: set exactly one indicator or metric")
    if kind in ("chart", "table") and not names and metric is None:
        raise err("indicators", f"a {kind} needs {need}")
    if kind == "table" and metric is not None:
        raise err("metric", "a table compares indicators; use indicators")
    if kind == "heatmap" and (metric is None or metric.type != "histogram"):
        hist = sorted(m.name for m in c.ALL if m.type == "histogram")
        raise err("metric", f"a heatmap needs a histogram metric; valid: {_choices(hist)}")
    if kind in ("anomaly", "forecast"):
        if len(names) != 1 or "indicators" in data:
            raise err("indicator", f"a {kind} panel needs exactly one indicator (field 'indicator')")
        if metric is not None:
            raise err("metric", f"a {kind} panel reads the sidecar's output for an indicator, not a metric")
    if kind == "score" and metric is not None:
        raise err("metric", "a score panel lists indicators, not a metric")


def custom_dashboard(data: Any, index: int = 0) -> CustomDashboard:
    """Validate one custom dashboard: name, layout, components (and optional uid, tags)."""
    name = data.get("name") if isinstance(data, Mapping) else None
    label = name if isinstance(name, str) else f"#{index}"

    def err(fieldname: str, reason: str) -> SpecError:
        return dashboard_error(fieldname, reason, label)

    if not isinstance(data, Mapping):
        raise err("name", "a dashboard must be a mapping with name and components")
    _unknown_keys(data, ("name", "layout", "components", "uid", "tags"), err)
    if not isinstance(name, str) or not name.strip():
        raise err("name", "required, a non-empty string")
    lay = data.get("layout", "grid")
    if lay not in layout.LAYOUTS:
        raise err("layout", f"unknown layout {lay!r}; valid: {_choices(layout.LAYOUTS)}")
    comps = data.get("components")
    if not isinstance(comps, list) or not comps or len(comps) > MAX_COMPONENTS:
        raise err("components", f"required, a list of 1 to {MAX_COMPONENTS} components")
    uid = data.get("uid")
    if uid is not None and (not isinstance(uid, str) or not UID_RE.match(uid)):
        raise err("uid", "must be 1 to 40 letters, digits, '-' or '_'")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise err("tags", "must be a list of strings")
    return CustomDashboard(
        name=name,
        layout=lay,
        components=tuple(component(comp, i, name) for i, comp in enumerate(comps)),
        uid=uid,
        tags=tuple(tags),
    )


def realtime_dashboard(data: Any, index: int = 0) -> RealtimeDashboard:
    def err(fieldname: str, reason: str) -> SpecError:
        return dashboard_error(fieldname, reason, f"realtime #{index}")

    if not isinstance(data, Mapping):
        raise err("tenant", "a realtime entry must be a mapping (tenant, widgets, title)")
    _unknown_keys(data, ("tenant", "widgets", "title"), err)
    tenant = data.get("tenant")
    if tenant is not None and (not isinstance(tenant, str) or not c.valid_tenant_id(tenant)):
        raise err("tenant", f"invalid tenant id {tenant!r}; must match {c.TENANT_ID_PATTERN}")
    widgets = data.get("widgets", list(WIDGETS))
    if not isinstance(widgets, list) or not widgets:
        raise err("widgets", f"must be a non-empty list; valid: {_choices(WIDGETS)}")
    for w in widgets:
        if w not in WIDGETS:
            raise err("widgets", f"unknown widget {w!r}; valid: {_choices(WIDGETS)}")
    title = data.get("title")
    if title is not None and not isinstance(title, str):
        raise err("title", "must be a string")
    return RealtimeDashboard(tenant, tuple(widgets), title)


def _grafana(data: Any) -> GrafanaTarget:
    if data is None:
        return GrafanaTarget()
    fields = ("prometheus_url", "jaeger_url", "folder", "dashboards_path")

    def err(fieldname: str, reason: str) -> SpecError:
        return SpecError(f"grafana.{fieldname}", reason)

    if not isinstance(data, Mapping):
        raise err("prometheus_url", "grafana must be a mapping")
    _unknown_keys(data, fields, err)
    for key, value in data.items():
        if not isinstance(value, str) or not value:
            raise err(key, "must be a non-empty string")
    return GrafanaTarget(**data)


TOP_LEVEL = ("grafana", "realtime", "dashboards", "slo_spec")
# The alert spec's top-level keys (``alert_rules.spec.TOP_LEVEL``; a test keeps the two equal), to say
# "this is an alerts spec" instead of "unknown field" when one is handed to the dashboards generator.
ALERTS_TOP_LEVEL = frozenset({"defaults", "channels", "actions", "routing", "alerts", "ml_alerts", "slos"})


def parse(data: Any, base: Path | None = None) -> DashboardsSpec:
    """Validate a whole spec mapping; ``base`` resolves the relative path of the SLO (alerts) spec."""
    if not isinstance(data, Mapping):
        raise SpecError("dashboards", "the spec must be a mapping with realtime and/or dashboards")
    if data.keys() & ALERTS_TOP_LEVEL and not data.keys() & set(TOP_LEVEL):
        raise SpecError(None, "this is an alerts spec, not a dashboards spec")
    _unknown_keys(data, TOP_LEVEL, lambda f, r: SpecError(f, r))
    realtime = data.get("realtime", [])
    custom = data.get("dashboards", [])
    if not isinstance(realtime, list):
        raise SpecError("realtime", "must be a list")
    if not isinstance(custom, list):
        raise SpecError("dashboards", "must be a list")
    slo = data.get("slo_spec")
    if slo is not None and not isinstance(slo, str):
        raise SpecError("slo_spec", "must be the path of an alerts spec")
    if not realtime and not custom and slo is None:
        raise SpecError("dashboards", "nothing to generate: give realtime, dashboards or slo_spec")
    spec = DashboardsSpec(
        grafana=_grafana(data.get("grafana")),
        realtime=tuple(realtime_dashboard(d, i) for i, d in enumerate(realtime)),
        dashboards=tuple(custom_dashboard(d, i) for i, d in enumerate(custom)),
        slo_spec=((base or Path.cwd()) / slo) if slo else None,
    )
    names = [d.name for d in spec.dashboards]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise dashboard_error("name", "dashboard names must be unique", dupes[0])
    return spec


def load(path: Path) -> DashboardsSpec:
    """Read and validate a YAML spec file."""
    try:
        return parse(read_yaml(path, "spec"), path.parent)
    except SpecError as exc:
        raise exc.within(path) from None
    except UsageError as exc:  # the file itself: its message names it
        raise SpecError(None, str(exc)) from None
