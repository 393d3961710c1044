"""The per-tenant realtime dashboard: one row per widget, every query from the catalog or indicators."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from grafanalib import core as g

from tenantpulse.conventions import catalog as c
from tenantpulse.conventions import indicators
from tenantpulse.grafana import anomaly, layout
from tenantpulse.grafana import panels as p
from tenantpulse.grafana import templating as tv
from tenantpulse.grafana.render import uid_for
from tenantpulse.kernel.errors import UsageError

Sized = tuple[object, tuple[int, int]]


def _sized(panel: object, size: tuple[int, int] | None = None) -> Sized:
    return panel, size or p.size_of(panel)


def _ind_stat(name: str, title: str) -> Sized:
    ind = indicators.get(name)
    return _sized(p.stat(title, p.indicator_query(name), p.unit_of(ind.unit), ind.description))


def _ind_series(title: str, names: Sequence[str], exemplar: bool = False, width: int = 12) -> Sized:
    ind = indicators.get(names[0])
    queries = [p.indicator_query(n, exemplar=exemplar) for n in names]
    return _sized(p.timeseries(title, queries, p.unit_of(ind.unit), ind.description), (width, 8))


def system_health() -> list[Sized]:
    return [
        _ind_stat("request_rate", "Events / s"),
        _ind_stat("error_rate", "Error rate"),
        _sized(p.stat("Series held", p.Query(p.metric_expr(c.TENANT_SERIES)), "short", c.TENANT_SERIES.help)),
        _sized(
            p.stat(
                "Exporter host CPU", p.Query(p.metric_expr(c.SYSTEM_CPU)), "percentunit", c.SYSTEM_CPU.help
            )
        ),
        _sized(
            p.timeseries(
                "Ingest request latency p95",
                [p.Query(p.metric_expr(c.INGEST_REQUEST_DURATION), "p95", exemplar=True)],
                "s",
                c.INGEST_REQUEST_DURATION.help,
            )
        ),
        _sized(
            p.timeseries(
                "Exporter host memory",
                [p.Query(p.metric_expr(c.SYSTEM_MEMORY), "used")],
                "bytes",
                c.SYSTEM_MEMORY.help,
            )
        ),
    ]


def user_activity() -> list[Sized]:
    by_type = f"sum by ({c.EVENT_TYPE}) (rate({c.EVENTS.selector(tenant=p.TENANT_MATCH)}[{p.RATE_WINDOW}]))"
    return [
        _ind_stat("active_users", "Active users"),
        _ind_stat("plays_per_minute", "Plays / min"),
        _ind_stat("sessions_per_minute", "Sessions / min"),
        _ind_stat("request_rate", "Events / s"),
        _sized(p.timeseries("Events by type", [p.Query(by_type, f"{{{{{c.EVENT_TYPE}}}}}")], "ops")),
        _ind_series("Plays and sessions per minute", ["plays_per_minute", "sessions_per_minute"]),
    ]


def revenue() -> list[Sized]:
    total = f"sum(increase({c.REVENUE.selector(tenant=p.TENANT_MATCH)}[$__range]))"
    hourly = f"3600 * {p.indicator_expr('revenue_rate')}"
    return [
        _sized(p.stat("Revenue in range", p.Query(total), "short", c.REVENUE.help), (6, 8)),
        _sized(
            p.timeseries("Revenue per hour", [p.Query(hourly, "revenue/h")], "short", c.REVENUE.help),
            (18, 8),
        ),
    ]


def errors() -> list[Sized]:
    return [
        _ind_series("Error rate", ["error_rate"]),
        _ind_series("Errors per second", ["errors_per_second"]),
    ]


def latency() -> list[Sized]:
    return [
        _ind_series(
            "Event duration p50 / p95 / p99", ["p50_latency", "p95_latency", "p99_latency"], exemplar=True
        ),
        _sized(p.heatmap("Event duration distribution", c.EVENT_DURATION, description=c.EVENT_DURATION.help)),
    ]


def conversion() -> list[Sized]:
    ind = indicators.get("conversion_rate")
    return [
        _sized(
            p.gauge("Conversion", p.indicator_query("conversion_rate"), "percentunit", 0, 1, ind.description)
        ),
        _ind_series("Conversion rate", ["conversion_rate"], width=18),
    ]


def unique_users() -> list[Sized]:
    return [
        _ind_stat("unique_users_1h", "Unique users (1h)"),
        _ind_stat("unique_users_1d", "Unique users (1d)"),
        _ind_series("Unique users", ["unique_users_1h", "unique_users_1d"]),
    ]


def anomalies() -> list[Sized]:
    return [_sized(anomaly.score_panel(), (24, 8))] + [
        _sized(anomaly.band_panel(name)) for name in indicators.WATCHED
    ]


def forecasts() -> list[Sized]:
    return [_sized(anomaly.forecast_panel(name)) for name in ("request_rate", "revenue_rate")]


WIDGETS: dict[str, tuple[str, Callable[[], list[Sized]]]] = {
    "system_health": ("System health", system_health),
    "user_activity": ("User activity", user_activity),
    "revenue": ("Revenue", revenue),
    "errors": ("Errors", errors),
    "latency": ("Latency (click an exemplar for its trace)", latency),
    "conversion": ("Conversion", conversion),
    "unique_users": ("Unique users", unique_users),
    "anomalies": ("Anomalies", anomalies),
    "forecasts": ("Forecasts", forecasts),
}
DEFAULT_WIDGETS: tuple[str, ...] = tuple(WIDGETS)


def create_realtime_dashboard(
    tenant_id: str | None = None, widgets: Sequence[str] = DEFAULT_WIDGETS, title: str | None = None
) -> g.Dashboard:
    """A live dashboard of the chosen widgets; ``tenant_id`` is the tenant selected when it opens.

    The ``tenant`` variable lists every tenant, so the same dashboard serves all of them.
    """
    if tenant_id is not None and not c.valid_tenant_id(tenant_id):
        raise UsageError(f"tenant {tenant_id!r} is not a valid tenant id (must match {c.TENANT_ID_PATTERN})")
    unknown = [w for w in widgets if w not in WIDGETS]
    if unknown:
        raise UsageError(f"unknown widget(s) {unknown}; valid: {', '.join(WIDGETS)}")
    if not widgets:
        raise UsageError(f"at least one widget is needed; valid: {', '.join(WIDGETS)}")
    items: list[Sized] = []
    for name in widgets:
        heading, build = WIDGETS[name]
        items.append((p.row(heading), (24, 1)))
        items.extend(build())
    suffix = tenant_id or "all"
    return g.Dashboard(
        title=title or (f"tenantpulse realtime: {tenant_id}" if tenant_id else "tenantpulse realtime"),
        uid=uid_for("realtime", suffix),
        description="Live per-tenant health, activity, revenue, latency and anomalies.",
        tags=["tenantpulse", "realtime"],
        timezone="browser",
        refresh="10s",
        time=g.Time("now-1h", "now"),
        templating=tv.templating(tenant_id, horizon="forecasts" in widgets),
        panels=layout.place(items),
    ).auto_panel_ids()
