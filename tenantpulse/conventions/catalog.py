"""The metric catalog: the one place where every metric tenantpulse exposes is named.

Rules, dashboards and the anomaly sidecar import these objects instead of retyping
metric names, so a rename here is a rename everywhere (and a typo is an ImportError,
not a silent "No data" panel).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from tenantpulse.conventions.promql import promql_string

MetricType = Literal["counter", "gauge", "histogram"]

NAMESPACE = "tenantpulse"

# Label names shared across the bundle.
TENANT = "tenant"
EVENT_TYPE = "event_type"
WINDOW = "window"
INDICATOR = "indicator"
HORIZON = "horizon"
REASON = "reason"
KPI = "kpi"
ENDPOINT = "endpoint"
CODE = "code"
DAY = "day"
QUANTILE = "quantile"
SEVERITY = "severity"

# Tenant ids appear in label values and PromQL matchers; this keeps them safe in both, unescaped.
TENANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
TENANT_ID_RE = re.compile(TENANT_ID_PATTERN)

# Event types are label values too; a bounded, safe alphabet keeps them out of escaping and cardinality trouble.
EVENT_TYPE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$")


def valid_tenant_id(value: str) -> bool:
    """Whole-string check (``re.match`` with ``$`` would let a trailing newline through)."""
    return TENANT_ID_RE.fullmatch(value) is not None


DURATION_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)


@dataclass(frozen=True)
class Metric:
    """One metric family: its exposed name, type, unit, help and the only labels it may carry."""

    name: str
    type: MetricType
    unit: str
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = field(default=())

    @property
    def family(self) -> str:
        """OpenMetrics family name (a counter's family drops its ``_total`` suffix)."""
        if self.type == "counter" and self.name.endswith("_total"):
            return self.name[: -len("_total")]
        return self.name

    def sample(self, suffix: str = "") -> str:
        """Name of one of the family's samples, e.g. ``sample("bucket")`` for histograms."""
        return f"{self.name}_{suffix}" if suffix else self.name

    def selector(self, suffix: str = "", **matchers: str) -> str:
        """A PromQL selector such as ``name{tenant="t1"}``; unknown labels are refused."""
        allowed = set(self.labels) | ({"le"} if suffix == "bucket" else set())
        unknown = set(matchers) - allowed
        if unknown:
            raise ValueError(f"{self.name} has no label(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        inner = ",".join(f"{k}{_op(v)}" for k, v in matchers.items())
        return f"{self.sample(suffix)}{{{inner}}}" if inner else self.sample(suffix)


def _op(value: str) -> str:
    """Matchers written as ``"=~a|b"``, ``"!=x"`` or ``"!~x"`` keep their operator; plain values mean ``=``.

    The value is quoted by ``promql_string``: whatever it holds (quotes, braces, backslashes) it stays
    one literal and cannot end the selector."""
    for op in ("=~", "!~", "!="):
        if value.startswith(op):
            return f"{op}{promql_string(value[len(op) :])}"
    return f"={promql_string(value)}"


# --- Tenant application and business metrics (exporter) -------------------------------------------

EVENTS = Metric(
    "tenantpulse_events_total",
    "counter",
    "",
    "Application events received, per tenant and event type.",
    (TENANT, EVENT_TYPE),
)
EVENT_DURATION = Metric(
    "tenantpulse_event_duration_seconds",
    "histogram",
    "seconds",
    "Duration carried by application events (metadata duration_ms / duration_seconds).",
    (TENANT, EVENT_TYPE),
    DURATION_BUCKETS,
)
REVENUE = Metric(
    "tenantpulse_revenue_total",
    "counter",
    "",
    "Revenue reported by the tenant, in the tenant's currency unit.",
    (TENANT,),
)
ACTIVE_USERS = Metric(
    "tenantpulse_active_users",
    "gauge",
    "",
    "Active users last reported by the tenant.",
    (TENANT,),
)
CONVERSION = Metric(
    "tenantpulse_conversion_ratio",
    "gauge",
    "ratio",
    "Conversion rate last reported by the tenant (0..1).",
    (TENANT,),
)
UNIQUE_USERS = Metric(
    "tenantpulse_unique_users",
    "gauge",
    "",
    "Estimated distinct pseudonymised users in a rolling window (HyperLogLog sketch).",
    (TENANT, WINDOW),
)
CUSTOM_KPI = Metric(
    "tenantpulse_custom_kpi",
    "gauge",
    "",
    "Tenant-defined KPI value (the KPI name is the kpi label).",
    (TENANT, KPI),
)
CUSTOM_KPI_COUNTER = Metric(
    "tenantpulse_custom_kpi_accumulated_total",
    "counter",
    "",
    "Tenant-defined counting KPI (the KPI name is the kpi label).",
    (TENANT, KPI),
)

# --- Exporter self-monitoring ---------------------------------------------------------------------

INGEST_REJECTED = Metric(
    "tenantpulse_ingest_rejected_total",
    "counter",
    "",
    "Ingest requests refused, per tenant and reason.",
    (TENANT, REASON),
)
INGEST_REQUEST_DURATION = Metric(
    "tenantpulse_ingest_request_duration_seconds",
    "histogram",
    "seconds",
    "Time to handle one ingest request; exemplars link to the request's trace.",
    (TENANT,),
    (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
TENANT_SERIES = Metric(
    "tenantpulse_tenant_series",
    "gauge",
    "",
    "Series currently held for the tenant (checked against its cap).",
    (TENANT,),
)
SYSTEM_CPU = Metric(
    "tenantpulse_system_cpu_ratio",
    "gauge",
    "ratio",
    "Host CPU utilisation seen by the exporter (0..1).",
    (),
)
SYSTEM_MEMORY = Metric(
    "tenantpulse_system_memory_used_bytes",
    "gauge",
    "bytes",
    "Host memory in use seen by the exporter.",
    (),
)

REDIS_UP = Metric(
    "tenantpulse_exporter_redis_up",
    "gauge",
    "",
    "1 while the exporter reaches the state its replicas share (Redis), 0 since a call failed; only with --redis-url.",
    (),
)

# --- Engagement and behaviour (exporter, theta sketches of pseudonyms) ----------------------------

ENGAGED_USERS = Metric(
    "tenantpulse_engagement_active_users",
    "gauge",
    "",
    "Distinct active users in the trailing day, week or month (window 1d, 7d, 30d: DAU, WAU, MAU).",
    (TENANT, WINDOW),
)
STICKINESS = Metric(
    "tenantpulse_engagement_stickiness_ratio",
    "gauge",
    "ratio",
    "DAU divided by MAU (0..1).",
    (TENANT,),
)
RETENTION = Metric(
    "tenantpulse_engagement_retention_ratio",
    "gauge",
    "ratio",
    "Share of the users first seen N days ago who were active again N days later (day label 1, 7, 30).",
    (TENANT, DAY),
)
SESSIONS_PER_USER = Metric(
    "tenantpulse_engagement_sessions_per_user",
    "gauge",
    "",
    "Sessions per user active in the trailing day, as quantiles over those users.",
    (TENANT, QUANTILE),
)
PLAYS_PER_USER = Metric(
    "tenantpulse_engagement_plays_per_user",
    "gauge",
    "",
    "Plays per user active in the trailing day, as quantiles over those users.",
    (TENANT, QUANTILE),
)
TIME_TO_FIRST_PLAY = Metric(
    "tenantpulse_session_time_to_first_play_seconds",
    "histogram",
    "seconds",
    "Time from a session's start to its first play.",
    (TENANT,),
    DURATION_BUCKETS,
)

# --- Insights (RecommendationEngine) --------------------------------------------------------------

INSIGHTS = Metric(
    "tenantpulse_insights",
    "gauge",
    "",
    "Open insights about the tenant, per severity (info, warning, critical).",
    (TENANT, SEVERITY),
)

# --- Anomaly sidecar output -----------------------------------------------------------------------

ANOMALY_SCORE = Metric(
    "tenantpulse_anomaly_score",
    "gauge",
    "",
    "How unusual the indicator is now, calibrated to [0, 1].",
    (TENANT, INDICATOR),
)
ANOMALY_WARMUP_REMAINING = Metric(
    "tenantpulse_anomaly_warmup_remaining",
    "gauge",
    "",
    "Samples the series still needs before it is scored; present only while it warms up, when its "
    "anomaly score is NaN.",
    (TENANT, INDICATOR),
)
ANOMALY_EXPECTED = Metric(
    "tenantpulse_anomaly_expected",
    "gauge",
    "",
    "Value the sidecar expected for the indicator now.",
    (TENANT, INDICATOR),
)
ANOMALY_LOWER = Metric(
    "tenantpulse_anomaly_lower",
    "gauge",
    "",
    "Lower edge of the expected band.",
    (TENANT, INDICATOR),
)
ANOMALY_UPPER = Metric(
    "tenantpulse_anomaly_upper",
    "gauge",
    "",
    "Upper edge of the expected band.",
    (TENANT, INDICATOR),
)
ANOMALY_STALE = Metric(
    "tenantpulse_anomaly_stale",
    "gauge",
    "",
    "1 while the sidecar cannot read Prometheus and serves its last values, else 0.",
    (),
)
FORECAST = Metric(
    "tenantpulse_forecast",
    "gauge",
    "",
    "Forecast of the indicator at the horizon.",
    (TENANT, INDICATOR, HORIZON),
)
FORECAST_LOWER = Metric(
    "tenantpulse_forecast_lower",
    "gauge",
    "",
    "Lower bound of the forecast interval.",
    (TENANT, INDICATOR, HORIZON),
)
FORECAST_UPPER = Metric(
    "tenantpulse_forecast_upper",
    "gauge",
    "",
    "Upper bound of the forecast interval.",
    (TENANT, INDICATOR, HORIZON),
)
SIDECAR_CYCLE_DURATION = Metric(
    "tenantpulse_sidecar_cycle_duration_seconds",
    "gauge",
    "seconds",
    "Duration of the last scoring cycle.",
    (),
)
SIDECAR_SERIES = Metric(
    "tenantpulse_sidecar_series_tracked",
    "gauge",
    "",
    "Series the sidecar holds a model for.",
    (),
)
SIDECAR_QUERY_ERRORS = Metric(
    "tenantpulse_sidecar_query_errors_total",
    "counter",
    "",
    "Failed queries to the Prometheus API.",
    (),
)
SIDECAR_LAST_SUCCESS = Metric(
    "tenantpulse_sidecar_last_success_timestamp_seconds",
    "gauge",
    "seconds",
    "Unix time of the last cycle that read Prometheus successfully.",
    (),
)
SIDECAR_STATE_DISCARDED = Metric(
    "tenantpulse_sidecar_state_discarded_total",
    "counter",
    "",
    "State files set aside at start as damaged or incompatible; the sidecar started without its models.",
    (),
)

# --- Read-path gateway (tenantpulse gateway) ----------------------------------------------------------

GATEWAY_REQUESTS = Metric(
    "tenantpulse_gateway_requests_total",
    "counter",
    "",
    "Requests the read-path gateway answered, per API endpoint and HTTP status code.",
    (ENDPOINT, CODE),
)
GATEWAY_REFUSALS = Metric(
    "tenantpulse_gateway_refusals_total",
    "counter",
    "",
    "Requests the gateway refused without asking the backend, per reason.",
    (REASON,),
)
GATEWAY_BACKEND_DURATION = Metric(
    "tenantpulse_gateway_backend_request_duration_seconds",
    "histogram",
    "seconds",
    "Time the backend took to answer one request forwarded by the gateway, per API endpoint.",
    (ENDPOINT,),
    (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)

ALL: tuple[Metric, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Metric))
BY_NAME: dict[str, Metric] = {m.name: m for m in ALL}
