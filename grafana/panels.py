"""grafanalib panels whose queries come only from the metric catalog and the named indicators.

Every expression is built for the dashboard's ``$tenant`` variable and Grafana's
``$__rate_interval``, so one dashboard serves every tenant and a catalog rename reaches every panel.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass

import attr
from grafanalib import core as g

from tenantpulse.conventions import catalog as c
from tenantpulse.conventions import indicators
from tenantpulse.grafana import templating as tv

RATE_WINDOW = "$__rate_interval"
TENANT_MATCH = f"${tv.TENANT}"

# Indicator units (free text in the catalog) -> Grafana unit ids.
GRAFANA_UNITS: dict[str, str] = {
    "events/s": "ops",
    "ratio": "percentunit",
    "s": "s",
    "seconds": "s",
    "bytes": "bytes",
    "plays/min": "opm",
    "sessions/min": "opm",
    "users": "short",
    "currency/s": "short",
}

# Default panel sizes on Grafana's 24-column grid, per panel kind.
# A single base step: Grafana expects a list of steps, grafanalib's Stat defaults to an empty string.
BASE_THRESHOLD: list[dict] = [{"color": "green", "value": None}]

SIZES: dict[str, tuple[int, int]] = {
    "timeseries": (12, 8),
    "stat": (6, 4),
    "gauge": (6, 6),
    "heatmap": (12, 8),
    "table": (12, 8),
    "bargauge": (12, 6),
}


@attr.s
class PromTarget(g.Target):
    """A Prometheus target that can ask for exemplars (grafanalib 0.7's Target has no such field)."""

    exemplar = attr.ib(default=False, validator=attr.validators.instance_of(bool))

    def to_json_data(self) -> dict:
        data = super().to_json_data()
        data["exemplar"] = self.exemplar
        data["range"] = not self.instant
        return data


@dataclass(frozen=True)
class Query:
    """One PromQL expression with its legend; ``exemplar`` asks Grafana to draw trace exemplars."""

    expr: str
    legend: str = ""
    exemplar: bool = False
    instant: bool = False
    format: str = "time_series"


def targets(queries: Sequence[Query]) -> list[PromTarget]:
    """grafanalib targets with refIds A, B, ... on the dashboard's datasource variable."""
    if len(queries) > len(string.ascii_uppercase):
        raise ValueError(f"at most {len(string.ascii_uppercase)} queries per panel, got {len(queries)}")
    return [
        # grafanalib has no types, so mypy's attrs plugin sees only PromTarget's own field (exemplar) in
        # __init__, not those it inherits from g.Target.
        PromTarget(  # type: ignore[call-arg]
            expr=q.expr,
            legendFormat=q.legend,
            refId=ref,
            exemplar=q.exemplar,
            instant=q.instant,
            format=q.format,
            datasource=tv.DATASOURCE_REF,
        )
        for q, ref in zip(queries, string.ascii_uppercase, strict=False)
    ]


def unit_of(indicator_unit: str) -> str:
    return GRAFANA_UNITS.get(indicator_unit, "short")


# --- Queries ----------------------------------------------------------------------------------------


def indicator_expr(name: str) -> str:
    """The indicator's PromQL for the selected tenant over Grafana's rate interval."""
    return indicators.get(name).build(TENANT_MATCH, RATE_WINDOW)


def indicator_query(name: str, legend: str | None = None, exemplar: bool = False) -> Query:
    return Query(indicator_expr(name), legend if legend is not None else name, exemplar)


def _matchers(metric: c.Metric, extra: dict[str, str]) -> dict[str, str]:
    """Tenant-labelled metrics are filtered to the selected tenant; others (host metrics) are not."""
    base = {c.TENANT: TENANT_MATCH} if c.TENANT in metric.labels else {}
    return {**base, **extra}


def metric_expr(metric: c.Metric, labels: dict[str, str] | None = None, quantile: float = 0.95) -> str:
    """A per-tenant series for any catalog metric: counters as rates, histograms as a quantile."""
    m = _matchers(metric, labels or {})
    by = f" by ({c.TENANT}) " if c.TENANT in metric.labels else ""
    if metric.type == "counter":
        return f"sum{by}(rate({metric.selector(**m)}[{RATE_WINDOW}]))"
    if metric.type == "histogram":
        le_by = f"by ({c.TENANT}, le)" if by else "by (le)"
        inner = f"rate({metric.selector('bucket', **m)}[{RATE_WINDOW}])"
        return f"histogram_quantile({quantile}, sum {le_by} ({inner}))"
    return f"max{by}({metric.selector(**m)})"


def heatmap_expr(metric: c.Metric, labels: dict[str, str] | None = None) -> str:
    """Bucket rates of a histogram, summed by ``le``, for a heatmap of its distribution."""
    if metric.type != "histogram":
        raise ValueError(f"{metric.name} is a {metric.type}, a heatmap needs a histogram")
    inner = f"rate({metric.selector('bucket', **_matchers(metric, labels or {}))}[{RATE_WINDOW}])"
    return f"sum by (le) ({inner})"


def metric_unit(metric: c.Metric) -> str:
    if metric.type == "counter":
        return "ops"
    return unit_of(metric.unit)


# --- Panels -----------------------------------------------------------------------------------------


def timeseries(
    title: str,
    queries: Sequence[Query],
    unit: str = "short",
    description: str = "",
    overrides: Sequence[dict] = (),
    fill: int = 10,
) -> g.TimeSeries:
    return g.TimeSeries(
        title=title,
        description=description,
        dataSource=tv.DATASOURCE_REF,
        targets=targets(queries),
        unit=unit,
        fillOpacity=fill,
        overrides=list(overrides),
        legendDisplayMode="list",
        tooltipMode="multi",
    )


def stat(title: str, query: Query, unit: str = "short", description: str = "") -> g.Stat:
    return g.Stat(
        title=title,
        description=description,
        dataSource=tv.DATASOURCE_REF,
        targets=targets([query]),
        format=unit,
        reduceCalc="lastNotNull",
        noValue="No data",
        thresholds=list(BASE_THRESHOLD),
    )


def gauge(
    title: str, query: Query, unit: str = "short", low: float = 0, high: float = 100, description: str = ""
) -> g.GaugePanel:
    return g.GaugePanel(
        title=title,
        description=description,
        dataSource=tv.DATASOURCE_REF,
        targets=targets([query]),
        format=unit,
        min=low,
        max=high,
        calc="lastNotNull",
        thresholds=list(BASE_THRESHOLD),
    )


def heatmap(title: str, metric: c.Metric, labels: dict[str, str] | None = None, description: str = ""):
    """A histogram's distribution over time; Grafana reads the ``le`` buckets directly."""
    query = Query(heatmap_expr(metric, labels), "{{le}}", exemplar=True, format="heatmap")
    return g.Heatmap(
        title=title,
        description=description,
        dataSource=tv.DATASOURCE_REF,
        targets=targets([query]),
        dataFormat="tsbuckets",
        yBucketBound="upper",
        hideZeroBuckets=True,
        legend={"show": True},  # the colour scale: how many events a shade stands for
        yAxis=g.YAxis(format=unit_of(metric.unit)),
    )


def table(title: str, queries: Sequence[Query], units: Sequence[str], description: str = "") -> g.Table:
    """Current values side by side: instant queries merged into one row per tenant, one column per
    query (Grafana names it ``Value #<refId>``) titled by its legend, each with its own unit."""
    if len(units) != len(queries):
        raise ValueError(f"a table needs one unit per query: {len(queries)} queries, {len(units)} units")
    instant = [Query(q.expr, q.legend, instant=True, format="table") for q in queries]
    built = targets(instant)
    columns = [
        {
            "matcher": {"id": "byName", "options": f"Value #{t.refId}"},
            "properties": [{"id": "displayName", "value": q.legend}, {"id": "unit", "value": unit}],
        }
        for t, q, unit in zip(built, queries, units, strict=True)
    ]
    return g.Table(
        title=title,
        description=description,
        dataSource=tv.DATASOURCE_REF,
        targets=built,
        overrides=columns,
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ],
    )


def row(title: str) -> g.RowPanel:
    return g.RowPanel(title=title)


def size_of(panel: object) -> tuple[int, int]:
    """Default (width, height) of a grafanalib panel."""
    kind = {
        g.TimeSeries: "timeseries",
        g.Stat: "stat",
        g.GaugePanel: "gauge",
        g.Heatmap: "heatmap",
        g.Table: "table",
        g.BarGauge: "bargauge",
    }.get(type(panel), "timeseries")
    return SIZES[kind]
