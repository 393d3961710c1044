"""Custom dashboards: validated components -> grafanalib panels, packed on the 24-column grid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from grafanalib import core as g

from tenantpulse.conventions import indicators
from tenantpulse.grafana import anomaly, layout
from tenantpulse.grafana import panels as p
from tenantpulse.grafana import spec as s
from tenantpulse.grafana import templating as tv
from tenantpulse.grafana.render import uid_for


def _queries(comp: s.Component) -> list[p.Query]:
    if comp.metric is not None:
        labels = dict(comp.labels)
        expr = p.metric_expr(comp.metric, labels, comp.quantile)
        return [p.Query(expr, comp.metric.name, exemplar=comp.metric.type == "histogram")]
    return [p.indicator_query(n, exemplar=indicators.get(n).unit == "s") for n in comp.indicators]


def _unit(comp: s.Component) -> str:
    if comp.metric is not None:
        return p.metric_unit(comp.metric)
    return p.unit_of(indicators.get(comp.indicators[0]).unit)


def _units(comp: s.Component) -> list[str]:
    """One unit per query: a table's columns mix rates, ratios and money."""
    if comp.metric is not None:
        return [p.metric_unit(comp.metric)]
    return [p.unit_of(indicators.get(n).unit) for n in comp.indicators]


def _description(comp: s.Component) -> str:
    if comp.description:
        return comp.description
    if comp.metric is not None:
        return comp.metric.help
    return " ".join(indicators.get(n).description for n in comp.indicators)


def panel_for(comp: s.Component) -> object:
    """The grafanalib panel drawing one component."""
    desc = _description(comp)
    title = comp.title or ", ".join(comp.indicators) or (comp.metric.name if comp.metric else comp.type)
    if comp.type == "chart":
        return p.timeseries(title, _queries(comp), _unit(comp), desc)
    if comp.type == "kpi":
        return p.stat(title, _queries(comp)[0], _unit(comp), desc)
    if comp.type == "gauge":
        unit = _unit(comp)
        low = comp.min if comp.min is not None else 0
        high = comp.max if comp.max is not None else (1 if unit == "percentunit" else 100)
        return p.gauge(title, _queries(comp)[0], unit, low, high, desc)
    if comp.type == "table":
        return p.table(title, _queries(comp), _units(comp), desc)
    if comp.type == "heatmap":
        assert comp.metric is not None  # checked by the spec
        return p.heatmap(title, comp.metric, dict(comp.labels), desc)
    if comp.type == "anomaly":
        panel = anomaly.band_panel(comp.indicators[0])
    elif comp.type == "forecast":
        panel = anomaly.forecast_panel(comp.indicators[0])
    else:
        panel = anomaly.score_panel(comp.indicators or indicators.WATCHED)
    if comp.title:
        panel.title = comp.title
    return panel


def build(dash: s.CustomDashboard) -> g.Dashboard:
    """A validated custom dashboard as a grafanalib Dashboard."""
    items = []
    for comp in dash.components:
        panel = panel_for(comp)
        w, h = p.size_of(panel)
        items.append((panel, (comp.width or w, comp.height or h)))
    needs_horizon = any(comp.type == "forecast" for comp in dash.components)
    return g.Dashboard(
        title=dash.name,
        uid=dash.uid or uid_for("custom", dash.name),
        tags=["tenantpulse", *dash.tags],
        timezone="browser",
        refresh="30s",
        time=g.Time("now-6h", "now"),
        templating=tv.templating(horizon=needs_horizon),
        panels=layout.place(items, layout.checked(dash.layout)),
    ).auto_panel_ids()


def create_custom_dashboard(
    name: str,
    layout: str = "grid",
    components: Sequence[Mapping[str, Any]] = (),
    uid: str | None = None,
    tags: Sequence[str] = (),
) -> g.Dashboard:
    """Python form of a spec entry; raises ``SpecError`` naming the component and field."""
    data: dict[str, Any] = {
        "name": name,
        "layout": layout,
        "components": list(components),
        "tags": list(tags),
    }
    if uid is not None:
        data["uid"] = uid
    return build(s.custom_dashboard(data))
