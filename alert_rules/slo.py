"""SLOs -> per-tenant error-ratio recording rules and the SRE workbook's multi-window burn-rate alerts.

Recording the ratio once per window keeps the alert expressions cheap and gives dashboards the
same numbers the pages are based on (``recording_rule_names`` / ``selector``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenantpulse.alert_rules.spec import SliPart, SloSpec
from tenantpulse.conventions import catalog, indicators

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
ERROR_RATIO = "tenant:tenantpulse_slo_errors:ratio_rate{window}"
OBJECTIVE = "tenantpulse_slo:objective:ratio"
BUDGET_REMAINING = "tenant:tenantpulse_slo_error_budget_remaining:ratio"
SLO_LABEL = "slo"


@dataclass(frozen=True)
class BurnRule:
    """One multi-window alert: fires when both windows burn faster than ``factor`` x the budget."""

    kind: str  # "page" or "ticket"
    windows: tuple[tuple[float, str, str], ...]  # (factor, long window, short window)


BURN_RULES = (
    BurnRule("page", ((14.4, "1h", "5m"), (6.0, "6h", "30m"))),
    BurnRule("ticket", ((3.0, "1d", "2h"), (1.0, "3d", "6h"))),
)


def windows(slo: SloSpec) -> tuple[str, ...]:
    """Recorded windows: the workbook's seven plus the SLO period (for the remaining budget)."""
    return WINDOWS if slo.period in WINDOWS else (*WINDOWS, slo.period)


def recording_rule_names(slo: SloSpec) -> dict[str, str]:
    """Names of the SLO's recording rules (every series also carries ``slo="<name>"``).

    Keys: each window (``"5m"`` ... ``"3d"`` and the period), ``"objective"``, ``"budget_remaining"``.
    """
    names = {w: ERROR_RATIO.format(window=w) for w in windows(slo)}
    names["objective"] = OBJECTIVE
    names["budget_remaining"] = BUDGET_REMAINING
    return names


def selector(slo: SloSpec, key: str) -> str:
    """PromQL selector for one of ``recording_rule_names(slo)``, e.g. ``selector(slo, "1h")``."""
    return f'{recording_rule_names(slo)[key]}{{{SLO_LABEL}="{slo.name}"}}'


def budget(slo: SloSpec) -> float:
    """Allowed error ratio, rounded so PromQL shows ``0.001`` rather than float noise."""
    return round(1 - slo.objective, 12)


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


def recording_rules(slo: SloSpec) -> list[dict[str, Any]]:
    labels = {SLO_LABEL: slo.name}
    rules: list[dict[str, Any]] = [
        {"record": ERROR_RATIO.format(window=w), "expr": ratio_expr(slo, w), "labels": labels}
        for w in windows(slo)
    ]
    rules.append({"record": OBJECTIVE, "expr": f"vector({slo.objective!r})", "labels": labels})
    rules.append(
        {
            "record": BUDGET_REMAINING,
            "expr": f"1 - {selector(slo, slo.period)} / {budget(slo)!r}",
            "labels": labels,
        }
    )
    return rules


def burn_expr(slo: SloSpec, rule: BurnRule) -> str:
    b = budget(slo)
    parts = [
        f"({selector(slo, long)} > ({factor!r} * {b!r}) and {selector(slo, short)} > ({factor!r} * {b!r}))"
        for factor, long, short in rule.windows
    ]
    return " or ".join(parts)


def alert_rules(slo: SloSpec, labels: dict[str, str]) -> list[dict[str, Any]]:
    """The page and ticket alerts; ``labels`` carries channel/action routing labels."""
    out = []
    for rule in BURN_RULES:
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
    return out


def alert_annotations(slo: SloSpec, rule: BurnRule) -> dict[str, str]:
    """Summary, description, runbook and value of one burn-rate alert."""
    factor, long, short = rule.windows[0]
    speed = "fast" if rule.kind == "page" else "slowly"
    return {
        "summary": f"SLO {slo.name}: error budget burning {speed} for tenant {{{{ $labels.tenant }}}}",
        "description": (
            f"Tenant {{{{ $labels.tenant }}}} has an error ratio of {{{{ $value | humanizePercentage }}}} over {long}"
            f" (objective {slo.objective * 100:g}% over {slo.period}); at >= {factor:g}x the budget rate over"
            f" {long} and {short} or {rule.windows[1][0]:g}x over {rule.windows[1][1]} and {rule.windows[1][2]}."
        ),
        "runbook_url": slo.runbook_url,
        "value": "{{ $value | humanizePercentage }}",
    }
