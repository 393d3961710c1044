"""Threshold alerts: a condition (or raw PromQL) held for ``for``, per tenant."""

from __future__ import annotations

from typing import Any

from tenantpulse.alert_rules import slo
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


def watched_selector(a: AlertSpec) -> str:
    """The raw series of the condition's first indicator, whose silence the no-data alert reports."""
    assert a.condition is not None
    metric = indicators.get(a.condition.groups[0][0].indicator).metrics[0]
    suffix = "count" if metric.type == "histogram" else ""
    return metric.selector(suffix, tenant=indicators.tenant_matcher(a.tenants))


def no_data_rule(a: AlertSpec) -> dict[str, Any]:
    """``<name>NoData``: the alert's series stopped for a tenant that had them, so ``a`` cannot fire."""
    nd = a.no_data
    assert nd is not None
    return {
        "alert": f"{a.name}NoData",
        "expr": slo.no_data_expr(watched_selector(a), nd.window, nd.lookback),
        "for": nd.for_,
        "labels": {"severity": nd.severity, **routing_labels(a)},
        "annotations": {
            "summary": f"{a.name}: no data for tenant {{{{ $labels.tenant }}}}",
            "description": (
                f"No samples behind {a.name} for tenant {{{{ $labels.tenant }}}} for {nd.window} (it had some"
                f" within {nd.lookback}): the exporter or the scrape is down, and {a.name} cannot fire."
            ),
            "runbook_url": a.runbook_url,
        },
    }
