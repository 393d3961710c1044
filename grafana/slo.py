"""SLO and error-budget panels for the SLOs of the alert spec.

Panels read the alert generator's own recording rules (``alert_rules.slo.recording_rule_names``), so
the dashboard shows exactly the ratios the burn-rate pages fire on.
"""

from __future__ import annotations

from pathlib import Path

from grafanalib import core as g

from tenantpulse.alert_rules import slo as rules
from tenantpulse.alert_rules.spec import SloSpec, load_spec
from tenantpulse.conventions import catalog as c
from tenantpulse.grafana import layout
from tenantpulse.grafana import panels as p
from tenantpulse.grafana import templating as tv
from tenantpulse.grafana.render import uid_for
from tenantpulse.kernel.errors import UsageError


def burn_windows(slo: SloSpec) -> tuple[tuple[str, float], ...]:
    """Burn-rate windows shown, with the factor that pages/tickets on them (derived from the period)."""
    return tuple((w.long, w.factor) for rule in slo.burn_rules for w in rule.windows)


def _series(slo: SloSpec, key: str) -> str:
    """A recording rule's series for this SLO and the selected tenant."""
    name = rules.recording_rule_names(slo)[key]
    return f'{name}{{{rules.SLO_LABEL}="{slo.name}",{c.TENANT}="${tv.TENANT}"}}'


def _objective(slo: SloSpec) -> str:
    """The selected tenant's objective: its override if the SLO has any (read from its recorded budget)."""
    if slo.tenant_objectives:
        return f"(1 - max({_series(slo, 'budget')}))"
    return f'max({rules.recording_rule_names(slo)["objective"]}{{{rules.SLO_LABEL}="{slo.name}"}})'


def slo_panels(slo: SloSpec) -> list[tuple[object, tuple[int, int]]]:
    """Row + budget left, SLI over the period, error ratio vs budget, burn rates with their thresholds."""
    fast = slo.burn_rules[0].windows[0]
    budget_left = p.stat(
        "Error budget remaining",
        p.Query(f"max({_series(slo, 'budget_remaining')})"),
        "percentunit",
        f"Share of the {slo.period} error budget not yet spent (objective {slo.objective:g}"
        + (", or the selected tenant's own)." if slo.tenant_objectives else ")."),
    )
    budget_left.thresholds = [
        {"color": "red", "value": None},
        {"color": "orange", "value": 0.25},
        {"color": "green", "value": 0.5},
    ]
    budget_left.colorMode = "background"
    sli = p.stat(
        f"SLI over {slo.period}",
        p.Query(f"1 - max({_series(slo, slo.period)})"),
        "percentunit",
        f"Good share over the SLO period; the objective is {slo.objective:g}.",
    )
    ratio = p.timeseries(
        "Error ratio vs budget",
        [
            p.Query(f"max({_series(slo, fast.short)})", f"error ratio {fast.short}"),
            p.Query(f"max({_series(slo, fast.long)})", f"error ratio {fast.long}"),
            p.Query(f"1 - {_objective(slo)}", "budget (1 - objective)"),
        ],
        "percentunit",
        "Error ratio from the SLO's recording rules; above the budget line the budget is being spent.",
    )
    burn = p.timeseries(
        "Burn rate",
        [
            p.Query(f"max({_series(slo, w)}) / (1 - {_objective(slo)})", f"{w} (alert at {f:g}x)")
            for w, f in burn_windows(slo)
        ],
        "suffix:x",
        "How many times faster than sustainable the budget burns; the page/ticket alerts fire above the factors shown.",
    )
    burn.thresholdsStyleMode = "dashed"
    burn.thresholds = [
        {"color": "green", "value": None},
        {"color": "orange", "value": 1},
        {"color": "red", "value": fast.factor},
    ]
    return [
        (p.row(f"SLO {slo.name}: {slo.objective * 100:g}% over {slo.period}"), (24, 1)),
        (budget_left, (6, 8)),
        (sli, (6, 8)),
        (ratio, (12, 8)),
        (burn, (24, 8)),
    ]


def create_slo_dashboard(alerts_spec: Path, title: str = "tenantpulse SLOs") -> g.Dashboard:
    """One dashboard with a section per SLO of the alert spec (the file ``generate rules`` reads)."""
    slos = load_spec(alerts_spec).slos
    if not slos:
        raise UsageError(f"alerts spec {alerts_spec} defines no slos: nothing to put on an SLO dashboard")
    items = [item for slo in slos for item in slo_panels(slo)]
    return g.Dashboard(
        title=title,
        uid=uid_for("slo", title),
        description="Error budgets and burn rates of the alert spec's SLOs, per tenant.",
        tags=["tenantpulse", "slo"],
        timezone="browser",
        refresh="1m",
        time=g.Time("now-7d", "now"),
        templating=tv.templating(),
        panels=layout.place(items),
    ).auto_panel_ids()
