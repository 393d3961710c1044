"""Anomaly alerts: thresholds on the sidecar's calibrated score (``catalog.ANOMALY_SCORE``)."""

from __future__ import annotations

from typing import Any

from alert_rules.spec import MlAlertSpec
from exporters import catalog, indicators


def expr(alert: MlAlertSpec) -> str:
    """Highest score per tenant for the watched indicator, over the threshold."""
    sel = catalog.ANOMALY_SCORE.selector(
        tenant=indicators.tenant_matcher(alert.tenants), **{catalog.INDICATOR: alert.model}
    )
    return f"max by ({catalog.TENANT}) ({sel}) > {alert.threshold!r}"


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
