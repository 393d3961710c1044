"""Anomaly alerts: thresholds on the sidecar's calibrated score (``catalog.ANOMALY_SCORE``)."""

from __future__ import annotations

from typing import Any

from tenantpulse.alert_rules.spec import MlAlertSpec, seconds
from tenantpulse.conventions import catalog, indicators

# The detector reports an anomaly once per episode: the score is high for a sample or two, then drops
# even if the series stays odd. The rule therefore looks at the highest score over its ``for`` plus
# this hold, so that ``for`` still delays the alert and the alert stays up a while after the peak.
HOLD = "5m"


def window(alert: MlAlertSpec) -> str:
    """How far back the rule looks for the score's peak: the alert's ``for`` plus ``HOLD``."""
    return f"{int(seconds(alert.for_) + seconds(HOLD))}s"


def expr(alert: MlAlertSpec) -> str:
    """Highest recent score per tenant for the watched indicator, over the threshold."""
    sel = catalog.ANOMALY_SCORE.selector(
        tenant=indicators.tenant_matcher(alert.tenants), **{catalog.INDICATOR: alert.model}
    )
    return f"max by ({catalog.TENANT}) (max_over_time({sel}[{window(alert)}])) > {alert.threshold!r}"


def rule(alert: MlAlertSpec, labels: dict[str, str]) -> dict[str, Any]:
    """The alerting rule; ``for`` comes from the sensitivity unless the spec set it."""
    return {
        "alert": alert.name,
        "expr": expr(alert),
        "for": alert.for_,
        "labels": {"severity": alert.severity, catalog.INDICATOR: alert.model, **labels},
        "annotations": {
            "summary": alert.summary,
            "description": alert.description,
            "runbook_url": alert.runbook_url,
            "value": "{{ $value | humanize }}",
        },
    }
