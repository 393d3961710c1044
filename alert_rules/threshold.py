"""Threshold alerts: a condition (or raw PromQL) held for ``for``, per tenant."""

from __future__ import annotations

from typing import Any

from tenantpulse.alert_rules.labels import routing_labels
from tenantpulse.alert_rules.spec import AlertSpec
from tenantpulse.alert_rules.templating import value_template
from tenantpulse.conventions import indicators


def expr(a: AlertSpec) -> str:
    if a.condition is not None:
        return a.condition.promql(a.tenants)
    assert a.expr is not None
    return a.expr


def value_unit(a: AlertSpec) -> str:
    """Unit of the alert's ``$value``: the first clause's indicator (PromQL ``and``/``or`` keep its value)."""
    if a.condition is None:
        return ""
    return indicators.get(a.condition.groups[0][0].indicator).unit


def rule(a: AlertSpec) -> dict[str, Any]:
    return {
        "alert": a.name,
        "expr": expr(a),
        "for": a.for_,
        "labels": {"severity": a.severity, **a.extra_labels, **routing_labels(a)},
        "annotations": {
            "summary": a.summary,
            "description": a.description,
            "runbook_url": a.runbook_url,
            "value": value_template(value_unit(a)),
        },
    }
