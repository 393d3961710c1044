"""Named indicators: per-tenant PromQL built from the metric catalog.

Alert conditions (``error_rate > 0.05``), dashboard panels and the anomaly sidecar all
speak in these names; each compiles to one expression that returns one series per tenant.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tenantpulse.conventions import catalog as c

ERROR_EVENT = "error"
PLAY_EVENT = "song_play"
SESSION_EVENT = "session_start"


@dataclass(frozen=True)
class Indicator:
    """A named per-tenant quantity; ``build(tenant_matcher, window)`` returns its PromQL."""

    name: str
    description: str
    unit: str
    metrics: tuple[c.Metric, ...]
    build: Callable[[str, str], str]

    @property
    def domain(self) -> tuple[float, float]:
        """Lowest and highest value the indicator can take: a ratio lies in [0, 1]; rates of counters,
        durations and user counts are never negative."""
        return (0.0, 1.0) if self.unit == "ratio" else (0.0, math.inf)

    def promql(self, tenants: Sequence[str] | None = None, window: str = "5m") -> str:
        """PromQL for this indicator, ``by (tenant)``, optionally restricted to some tenants."""
        return self.build(tenant_matcher(tenants), window)


def tenant_matcher(tenants: Sequence[str] | None) -> str:
    """Matcher value for the tenant label: all tenants, one, or an anchored alternation."""
    if not tenants:
        return "!="
    bad = [t for t in tenants if not c.valid_tenant_id(t)]
    if bad:
        raise ValueError(f"invalid tenant id(s) {bad}: must match {c.TENANT_ID_PATTERN}")
    if len(tenants) == 1:
        return tenants[0]
    return "=~" + "|".join(t.replace(".", "\\.") for t in tenants)  # a regex; the selector quotes it


def _rate(metric: c.Metric, t: str, w: str, suffix: str = "", **m: str) -> str:
    return f"rate({metric.selector(suffix, tenant=t, **m)}[{w}])"


def _sum_rate(metric: c.Metric, t: str, w: str, **m: str) -> str:
    return f"sum by ({c.TENANT}) ({_rate(metric, t, w, **m)})"


def _quantile(q: float) -> Callable[[str, str], str]:
    def build(t: str, w: str) -> str:
        inner = _rate(c.EVENT_DURATION, t, w, "bucket")
        return f"histogram_quantile({q}, sum by ({c.TENANT}, le) ({inner}))"

    return build


def _gauge(metric: c.Metric, **m: str) -> Callable[[str, str], str]:
    return lambda t, w: f"max by ({c.TENANT}) ({metric.selector(tenant=t, **m)})"


INDICATORS: dict[str, Indicator] = {
    i.name: i
    for i in (
        Indicator(
            "request_rate",
            "Events per second, all types.",
            "events/s",
            (c.EVENTS,),
            lambda t, w: _sum_rate(c.EVENTS, t, w),
        ),
        Indicator(
            "error_rate",
            "Share of events that are errors (0..1).",
            "ratio",
            (c.EVENTS,),
            lambda t, w: (
                f"({_sum_rate(c.EVENTS, t, w, event_type=ERROR_EVENT)} or {_sum_rate(c.EVENTS, t, w)} * 0)"
                f" / {_sum_rate(c.EVENTS, t, w)}"
            ),
        ),
        Indicator(
            "errors_per_second",
            "Error events per second.",
            "events/s",
            (c.EVENTS,),
            lambda t, w: _sum_rate(c.EVENTS, t, w, event_type=ERROR_EVENT),
        ),
        Indicator(
            "plays_per_minute",
            "Song plays per minute.",
            "plays/min",
            (c.EVENTS,),
            lambda t, w: f"60 * {_sum_rate(c.EVENTS, t, w, event_type=PLAY_EVENT)}",
        ),
        Indicator(
            "sessions_per_minute",
            "Sessions started per minute.",
            "sessions/min",
            (c.EVENTS,),
            lambda t, w: f"60 * {_sum_rate(c.EVENTS, t, w, event_type=SESSION_EVENT)}",
        ),
        Indicator(
            "p50_latency",
            "Median event duration.",
            "s",
            (c.EVENT_DURATION,),
            _quantile(0.5),
        ),
        Indicator(
            "p95_latency",
            "95th percentile event duration.",
            "s",
            (c.EVENT_DURATION,),
            _quantile(0.95),
        ),
        Indicator(
            "p99_latency",
            "99th percentile event duration.",
            "s",
            (c.EVENT_DURATION,),
            _quantile(0.99),
        ),
        Indicator(
            "revenue_rate",
            "Revenue per second.",
            "currency/s",
            (c.REVENUE,),
            lambda t, w: _sum_rate(c.REVENUE, t, w),
        ),
        Indicator(
            "active_users",
            "Active users last reported.",
            "users",
            (c.ACTIVE_USERS,),
            _gauge(c.ACTIVE_USERS),
        ),
        Indicator(
            "conversion_rate",
            "Conversion rate last reported (0..1).",
            "ratio",
            (c.CONVERSION,),
            _gauge(c.CONVERSION),
        ),
        Indicator(
            "unique_users_1h",
            "Distinct users in the last hour (sketch estimate).",
            "users",
            (c.UNIQUE_USERS,),
            _gauge(c.UNIQUE_USERS, window="1h"),
        ),
        Indicator(
            "unique_users_1d",
            "Distinct users in the last day (sketch estimate).",
            "users",
            (c.UNIQUE_USERS,),
            _gauge(c.UNIQUE_USERS, window="1d"),
        ),
    )
}

# The indicators the anomaly sidecar watches by default (one series per tenant each).
WATCHED: tuple[str, ...] = ("request_rate", "error_rate", "plays_per_minute", "p95_latency", "revenue_rate")


def get(name: str) -> Indicator:
    """Look up an indicator; the error names the valid choices."""
    try:
        return INDICATORS[name]
    except KeyError:
        raise KeyError(f"unknown indicator {name!r}; valid: {', '.join(sorted(INDICATORS))}") from None
