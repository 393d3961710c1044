"""Burn-rate windows from the period, refusals of SLOs that could never page, and no-data alerts,
checked by the generated promtool tests (firing and quiet) on a real promtool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tenantpulse.alert_rules import burn, checks, rule_tests, slo
from tenantpulse.alert_rules.checks import CheckFailed
from tenantpulse.alert_rules.rules import RULES_FILE, TESTS_FILE, write_rules
from tenantpulse.alert_rules.spec import load_spec, parse_spec, seconds
from tenantpulse.kernel.errors import SpecError
from tests.support.prometheus import require

EVENTS = {"metric": "tenantpulse_events_total"}
INDICATOR = {"error": {**EVENTS, "match": {"event_type": "error"}}, "total": EVENTS}


def spec_with(*slos: dict[str, Any], alerts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"defaults": {"runbook_base": "https://rb"}, "alerts": alerts or [], "slos": list(slos)}


def an_slo(**fields: Any) -> dict[str, Any]:
    return {"name": "avail", "objective": 0.999, "indicator": INDICATOR, **fields}


def test_a_30_day_period_keeps_the_workbook_factors_and_windows() -> None:
    page, ticket = burn.burn_rules(seconds("30d"))
    assert [(w.factor, w.long, w.short) for w in page.windows] == [(14.4, "1h", "5m"), (6.0, "6h", "30m")]
    assert [(w.factor, w.long, w.short) for w in ticket.windows] == [(3.0, "1d", "2h"), (1.0, "3d", "6h")]


@pytest.mark.parametrize("period", ["1d", "7d", "28d", "90d", "365d", "3d7h"])
def test_other_periods_spend_the_same_share_of_their_budget(period: str) -> None:
    """factor x window / period is the workbook's share of the budget, whatever the period."""
    p = seconds(period)
    rules = burn.burn_rules(p)
    windows = [w for rule in rules for w in rule.windows]
    for w, (_, share, long_30d, _) in zip(windows, burn.WORKBOOK, strict=True):
        assert w.share == share
        assert abs(seconds(w.long) - long_30d * p / seconds("30d")) <= 30  # the period's share, to the minute
        assert w.factor * seconds(w.long) / p == pytest.approx(share, rel=1e-6)
        assert burn.MIN_WINDOW_S <= seconds(w.short) < seconds(w.long) < p


def test_too_short_period_and_unreachable_objectives_are_refused_naming_file_and_field(
    tmp_path: Path,
) -> None:
    cases = [
        (an_slo(period="1h"), "period", "too short"),
        (an_slo(period="12h"), "period", "too short"),
        (an_slo(objective=0.9), "objective", "can never page"),
        (an_slo(tenant_objectives={"acme": 0.92}), "tenant_objectives.acme", "can never page"),
        (an_slo(tenant_objectives={"Bad Tenant": 0.999}), "tenant_objectives.Bad Tenant", "invalid tenant"),
        (an_slo(no_data={"window": "30s"}), "no_data.window", "promtool"),
        (an_slo(no_data={"window": "1h", "lookback": "1h"}), "no_data.lookback", "window + for"),
    ]
    for raw, field, needle in cases:
        path = tmp_path / "spec.yaml"
        path.write_text(yaml.safe_dump(spec_with(raw)))
        with pytest.raises(SpecError) as exc:
            load_spec(path)
        assert (exc.value.item, exc.value.field) == ("avail", field), raw
        assert needle in str(exc.value) and str(path) in str(exc.value)


def test_rate_windows_promtool_cannot_check_are_refused() -> None:
    with pytest.raises(SpecError) as exc:
        parse_spec({**spec_with(), "defaults": {"runbook_base": "https://rb", "window": "30s"}})
    assert exc.value.field == "defaults.window" and "60s" in str(exc.value)
    alert = {"name": "Fast", "condition": "request_rate > 1 and error_rate[30s] > 0.1"}
    with pytest.raises(SpecError) as exc:
        parse_spec(spec_with(alerts=[alert]))
    assert (exc.value.item, exc.value.field) == ("Fast", "condition")
    raw = {
        "name": "Raw",
        "expr": "vector(1)",
        "no_data": True,
        "test": {"firing": [{"series": "a", "values": "1"}], "tenant": "a", "value": 1},
    }
    with pytest.raises(SpecError) as exc:
        parse_spec(spec_with(alerts=[raw]))
    assert exc.value.field == "no_data"


@pytest.mark.integration
def test_generated_tests_pass_for_every_period_with_no_data_and_overrides(tmp_path: Path) -> None:
    """Page, ticket and quiet cases for each period; no-data firing and quiet; a tenant with its own
    objective paging at a burn where the default tenant only tickets."""
    require("promtool")
    slos = [an_slo(name=f"p{i}", period=p) for i, p in enumerate(["1d", "7d", "28d", "90d"])]
    slos.append(an_slo(name="premium", objective=0.99, tenant_objectives={"vip": 0.999}))
    slos.append(
        {
            "name": "by_indicator",
            "objective": 0.995,
            "indicator": {"error": "errors_per_second", "total": "request_rate"},
            "tenants": ["acme", "vip"],
            "tenant_objectives": {"vip": 0.9995},
            "no_data": {"window": "5m", "lookback": "2h", "for": "2m", "severity": "critical"},
        }
    )
    alerts = [{"name": "Slow", "condition": "p95_latency > 0.5", "no_data": {"window": "15m"}}]
    spec = parse_spec(spec_with(*slos, alerts=alerts))
    write_rules(spec, tmp_path)
    assert "SUCCESS" in checks.test_rules(tmp_path / TESTS_FILE)
    tests = yaml.safe_load((tmp_path / TESTS_FILE).read_text())["tests"]
    by_alert: dict[str, list[int]] = {}
    for group in tests:
        for case in group["alert_rule_test"]:
            by_alert.setdefault(case["alertname"], []).append(len(case["exp_alerts"]))
    assert set(by_alert) == set(spec.alert_names())
    assert all(0 in counts and any(counts) for counts in by_alert.values()), by_alert
    override = next(g for g in tests if g["name"].startswith("PremiumErrorBudgetBurn at"))
    fired = {
        (a["exp_labels"]["tenant"], a["exp_labels"]["burn"])
        for a in override["alert_rule_test"][0]["exp_alerts"]
    }
    assert ("vip", "page") in fired and ("tenant-a", "page") not in fired and ("tenant-a", "ticket") in fired


@pytest.mark.integration
@pytest.mark.parametrize(
    ("alert", "broken", "fixed"),
    [
        ("AvailSLINoData", " unless ", " and "),  # never fires for the silent tenant
        ("AvailSLINoData", "[1d]", "[5m]"),  # forgets the tenant existed: never fires
        # ignores the tenant's own budget: the override tenant no longer pages
        ("AvailErrorBudgetBurn", 'tenant:tenantpulse_slo_error_budget:ratio{slo="avail"}', "0.001"),
        ("AvailErrorBudgetBurn", "(6.0 *", "(0.6 *"),  # a factor off by ten: pages when it should ticket
    ],
)
def test_generated_tests_catch_broken_no_data_and_override_rules(
    tmp_path: Path, alert: str, broken: str, fixed: str
) -> None:
    require("promtool")
    write_rules(parse_spec(spec_with(an_slo(tenant_objectives={"vip": 0.9999}))), tmp_path / "ok")
    rules = (tmp_path / "ok" / RULES_FILE).read_text()
    start = rules.index(f"- alert: {alert}\n")
    end = rules.find("- alert:", start + 1)
    block = rules[start:] if end < 0 else rules[start:end]
    assert broken in block
    (tmp_path / RULES_FILE).write_text(rules.replace(block, block.replace(broken, fixed), 1))
    tests = yaml.safe_load((tmp_path / "ok" / TESTS_FILE).read_text())
    tests["tests"] = [g for g in tests["tests"] if g["alert_rule_test"][0]["alertname"] == alert]
    (tmp_path / TESTS_FILE).write_text(yaml.safe_dump(tests))
    with pytest.raises(CheckFailed, match=alert):
        checks.test_rules(tmp_path / TESTS_FILE)


def test_rule_count_does_not_grow_with_tenants_or_overrides() -> None:
    """1 SLO over 30 days: 12 rules + no-data; with any number of per-tenant objectives 2 more."""
    plain = parse_spec(spec_with(an_slo())).slos[0]
    many = {f"tenant-{i:03d}": 0.9995 for i in range(100)}
    overridden = parse_spec(spec_with(an_slo(tenant_objectives=many))).slos[0]
    assert len(slo.recording_rules(plain) + slo.alert_rules(plain, {})) == 13
    assert len(slo.recording_rules(overridden) + slo.alert_rules(overridden, {})) == 15
    assert rule_tests.fired(overridden, 0.005, slo.budget(overridden, "tenant-001")) == ["page", "ticket"]
    assert rule_tests.fired(overridden, 0.005, slo.budget(overridden, "other")) == ["ticket"]
