"""SLOs -> per-tenant error-ratio recording rules and the SRE workbook's multi-window burn-rate alerts.

Recording the ratio once per window keeps the alert expressions cheap and gives dashboards the
same numbers the pages are based on (``recording_rule_names`` / ``selector``). Windows and factors
come from the period (``burn``). Per-tenant objectives add two rules whatever the number of tenants:
one series per overridden tenant, and a per-tenant budget that falls back to the SLO's objective;
the alerts then compare each tenant's ratio with its own budget.
"""

from __future__ import annotations

from typing import Any

from tenantpulse.alert_rules import burn
from tenantpulse.alert_rules.spec import SliPart, SloSpec, seconds
from tenantpulse.conventions import catalog, indicators

ERROR_RATIO = "tenant:tenantpulse_slo_errors:ratio_rate{window}"
OBJECTIVE = "tenantpulse_slo:objective:ratio"
TENANT_OBJECTIVE = "tenant:tenantpulse_slo_objective:ratio"
TENANT_BUDGET = "tenant:tenantpulse_slo_error_budget:ratio"
BUDGET_REMAINING = "tenant:tenantpulse_slo_error_budget_remaining:ratio"
SLO_LABEL = "slo"


def windows(slo: SloSpec) -> tuple[str, ...]:
    """Recorded windows: those the burn rules read, plus the SLO period (for the remaining budget)."""
    return burn.windows(slo.burn_rules, slo.period, seconds(slo.period))


def recording_rule_names(slo: SloSpec) -> dict[str, str]:
    """Names of the SLO's recording rules (every series also carries ``slo="<name>"``).

    Keys: each window (``"5m"`` ... ``"3d"`` for 30 days, and the period), ``"objective"``,
    ``"budget_remaining"``, and with ``tenant_objectives`` ``"tenant_objective"`` and ``"budget"``.
    """
    names = {w: ERROR_RATIO.format(window=w) for w in windows(slo)}
    names["objective"] = OBJECTIVE
    if slo.tenant_objectives:
        names["tenant_objective"] = TENANT_OBJECTIVE
        names["budget"] = TENANT_BUDGET
    names["budget_remaining"] = BUDGET_REMAINING
    return names


def selector(slo: SloSpec, key: str) -> str:
    """PromQL selector for one of ``recording_rule_names(slo)``, e.g. ``selector(slo, "1h")``."""
    return f'{recording_rule_names(slo)[key]}{{{SLO_LABEL}="{slo.name}"}}'


def budget(slo: SloSpec, tenant: str | None = None) -> float:
    """Allowed error ratio (of ``tenant`` when given), rounded so PromQL shows ``0.001``, not float noise."""
    return round(1 - slo.tenant_objectives.get(tenant or "", slo.objective), 12)


def budget_expr(slo: SloSpec) -> str:
    """The budget the alerts compare with: a number, or each tenant's recorded budget."""
    return selector(slo, "budget") if slo.tenant_objectives else repr(budget(slo))


def _part(part: SliPart, tenants: tuple[str, ...], window: str) -> str:
    if part.indicator is not None:
        return indicators.get(part.indicator).promql(tenants or None, window)
    assert part.metric is not None
    sel = part.metric.selector(part.suffix, tenant=indicators.tenant_matcher(tenants), **part.match)
    return f"sum by ({catalog.TENANT}) (rate({sel}[{window}]))"


def ratio_expr(slo: SloSpec, window: str) -> str:
    """Per-tenant error ratio over ``window``; a tenant with traffic but no error series scores 0."""
    part = _part(slo.part, slo.tenants, window)
    total = _part(slo.total, slo.tenants, window)
    share = f"({part} or {total} * 0) / {total}"
    return share if slo.kind == "error" else f"1 - {share}"


def tenant_objective_expr(slo: SloSpec) -> str:
    """One series per overridden tenant; the expression grows with the overrides, the rule count does not."""
    return " or ".join(
        f'label_replace(vector({o!r}), "{catalog.TENANT}", "{t}", "", "")'
        for t, o in sorted(slo.tenant_objectives.items())
    )


def tenant_budget_expr(slo: SloSpec) -> str:
    """Every tenant seen over the period: 1 - its override, else 1 - the SLO's objective."""
    seen = f"count by ({catalog.TENANT}) ({selector(slo, slo.period)})"
    return (
        f"1 - ({selector(slo, 'tenant_objective')} or on ({catalog.TENANT}) (0 * {seen} + {slo.objective!r}))"
    )


def recording_rules(slo: SloSpec) -> list[dict[str, Any]]:
    labels = {SLO_LABEL: slo.name}
    rules: list[dict[str, Any]] = [
        {"record": ERROR_RATIO.format(window=w), "expr": ratio_expr(slo, w), "labels": labels}
        for w in windows(slo)
    ]
    rules.append({"record": OBJECTIVE, "expr": f"vector({slo.objective!r})", "labels": labels})
    if slo.tenant_objectives:
        rules.append({"record": TENANT_OBJECTIVE, "expr": tenant_objective_expr(slo), "labels": labels})
        rules.append({"record": TENANT_BUDGET, "expr": tenant_budget_expr(slo), "labels": labels})
    rules.append(
        {
            "record": BUDGET_REMAINING,
            "expr": f"1 - {selector(slo, slo.period)} / {budget_expr(slo)}",
            "labels": labels,
        }
    )
    return rules


def burn_expr(slo: SloSpec, rule: burn.BurnRule) -> str:
    b = budget_expr(slo)
    parts = [
        f"({selector(slo, w.long)} > ({w.factor!r} * {b}) and {selector(slo, w.short)} > ({w.factor!r} * {b}))"
        for w in rule.windows
    ]
    return " or ".join(parts)


def alert_rules(slo: SloSpec, labels: dict[str, str]) -> list[dict[str, Any]]:
    """The page and ticket alerts, then the no-data alert; ``labels`` carries channel/action routing labels."""
    out = []
    for rule in slo.burn_rules:
        severity = slo.severity_page if rule.kind == "page" else slo.severity_ticket
        out.append(
            {
                "alert": slo.alert_name,
                "expr": burn_expr(slo, rule),
                "for": slo.page_for if rule.kind == "page" else slo.ticket_for,
                "labels": {"severity": severity, "burn": rule.kind, **labels},
                "annotations": alert_annotations(slo, rule),
            }
        )
    if slo.no_data is not None:
        out.append(no_data_rule(slo, labels))
    return out


def objective_text(slo: SloSpec) -> str:
    base = f"objective {slo.objective * 100:g}%"
    return base if not slo.tenant_objectives else f"{base}, or the tenant's own"


def alert_annotations(slo: SloSpec, rule: burn.BurnRule) -> dict[str, str]:
    """Summary, description, runbook and value of one burn-rate alert."""
    first, second = rule.windows
    speed = "fast" if rule.kind == "page" else "slowly"
    return {
        "summary": f"SLO {slo.name}: error budget burning {speed} for tenant {{{{ $labels.tenant }}}}",
        "description": (
            f"Tenant {{{{ $labels.tenant }}}} has an error ratio of {{{{ $value | humanizePercentage }}}} over {first.long}"
            f" ({objective_text(slo)} over {slo.period}); at >= {first.factor:g}x the budget rate over"
            f" {first.long} and {first.short} or {second.factor:g}x over {second.long} and {second.short}."
        ),
        "runbook_url": slo.runbook_url,
        "value": "{{ $value | humanizePercentage }}",
    }


def presence(sel: str, window: str) -> str:
    """One series per tenant that has a sample of ``sel`` within ``window``."""
    return f"count by ({catalog.TENANT}) (count_over_time({sel}[{window}]))"


def total_selector(slo: SloSpec) -> str:
    """The raw series the SLI's total is computed from (whose silence the no-data alert reports)."""
    tenant = indicators.tenant_matcher(slo.tenants)
    if slo.total.indicator is not None:
        metric = indicators.get(slo.total.indicator).metrics[0]
        return metric.selector("count" if metric.type == "histogram" else "", tenant=tenant)
    assert slo.total.metric is not None
    return slo.total.metric.selector(slo.total.suffix, tenant=tenant, **slo.total.match)


def no_data_expr(sel: str, window: str, lookback: str) -> str:
    """Tenants seen within ``lookback`` but silent for ``window``: a new tenant never pages, a silent one does."""
    return f"{presence(sel, lookback)} unless {presence(sel, window)}"


def no_data_rule(slo: SloSpec, labels: dict[str, str]) -> dict[str, Any]:
    nd = slo.no_data
    assert nd is not None
    return {
        "alert": slo.no_data_name,
        "expr": no_data_expr(total_selector(slo), nd.window, nd.lookback),
        "for": nd.for_,
        "labels": {"severity": nd.severity, SLO_LABEL: slo.name, **labels},
        "annotations": {
            "summary": f"SLO {slo.name}: no data for tenant {{{{ $labels.tenant }}}}",
            "description": (
                f"No samples of the SLI's total for tenant {{{{ $labels.tenant }}}} for {nd.window} (it had some"
                f" within {nd.lookback}): the exporter or the scrape is down, and the burn-rate alerts cannot fire."
            ),
            "runbook_url": slo.runbook_url,
        },
    }
