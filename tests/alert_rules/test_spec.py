"""Spec validation: each mistake is refused with the alert, the field and the valid choices."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantpulse.alert_rules.alertmanager import config as alertmanager_config
from tenantpulse.alert_rules.conditions import parse_condition
from tenantpulse.alert_rules.manager import AlertManager
from tenantpulse.alert_rules.rules import rule_groups
from tenantpulse.alert_rules.spec import parse_spec
from tenantpulse.alert_rules.templating import check_template, humanize, render
from tenantpulse.conventions import indicators
from tenantpulse.kernel.errors import SpecError, UsageError

BASE: dict[str, Any] = {
    "defaults": {"runbook_base": "https://rb.example"},
    "channels": {"slack": {"api_url_file": "/run/secrets/slack"}},
    "actions": {"scale_up": {"url": "http://autoscaler:8080/up"}},
    "alerts": [{"name": "HighErrors", "condition": "error_rate > 0.05", "severity": "critical"}],
}


def with_alert(**fields: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    spec["alerts"][0].update(fields)
    return spec


def refused(spec: dict[str, Any]) -> SpecError:
    with pytest.raises(SpecError) as exc:
        parse_spec(spec)
    return exc.value


def test_valid_spec_compiles_condition_by_tenant() -> None:
    spec = parse_spec(BASE)
    a = spec.alerts[0]
    assert a.severity == "critical" and a.channels == ("slack",) and a.tenants == ()
    assert a.runbook_url == "https://rb.example/HighErrors"
    assert a.condition is not None
    assert a.condition.promql() == f"({indicators.get('error_rate').promql()}) > 0.05"


def test_unknown_indicator_lists_valid_ones() -> None:
    err = refused(with_alert(condition="eror_rate > 0.05"))
    assert (err.item, err.field) == ("HighErrors", "condition")
    assert "'eror_rate'" in str(err) and all(name in str(err) for name in indicators.INDICATORS)
    assert isinstance(err, UsageError)


@pytest.mark.parametrize(
    ("fields", "field", "needle"),
    [
        ({"condition": "error_rate => 0.05"}, "condition", "valid: > >= < <= == !="),
        ({"condition": "error_rate > lots"}, "condition", "bad threshold 'lots'"),
        ({"condition": "error_rate[5 minutes] > 0.1"}, "condition", "bad window"),
        ({"for": "5 minutes"}, "for", "bad duration '5 minutes'"),
        ({"severity": "page"}, "severity", "valid: critical, warning, info"),
        ({"channels": ["pager"]}, "channels", "unknown channel 'pager'; valid: slack"),
        ({"actions": ["reboot"]}, "actions", "unknown action 'reboot'; valid: scale_up"),
        ({"tenants": ["ok", "bad tenant"]}, "tenants", "invalid tenant id"),
        ({"summary": "value {{ $value }}"}, "summary", "bare $value prints float noise"),
        ({"colour": "red"}, "colour", "unknown field 'colour'"),
        ({"expr": "up == 0"}, "condition", "exactly one of"),
    ],
)
def test_bad_fields_name_alert_field_and_choices(fields: dict[str, Any], field: str, needle: str) -> None:
    err = refused(with_alert(**fields))
    assert (err.item, err.field) == ("HighErrors", field)
    assert needle in str(err)


def test_raw_expr_needs_test_inputs() -> None:
    spec = copy.deepcopy(BASE)
    spec["alerts"] = [{"name": "Raw", "expr": "vector(1) > 0"}]
    err = refused(spec)
    assert (err.item, err.field) == ("Raw", "test")


def test_duplicate_names_and_slo_errors() -> None:
    spec = copy.deepcopy(BASE)
    spec["alerts"].append(copy.deepcopy(spec["alerts"][0]))
    assert "duplicate" in str(refused(spec))
    slo = {
        "name": "avail",
        "objective": 1.5,
        "indicator": {"error": "errors_per_second", "total": "request_rate"},
    }
    err = refused({**BASE, "slos": [slo]})
    assert (err.item, err.field) == ("avail", "objective")
    slo = {
        "name": "avail",
        "objective": 0.99,
        "indicator": {"error": {"metric": "tenantpulse_nope_total"}, "total": "request_rate"},
    }
    err = refused({**BASE, "slos": [slo]})
    assert err.field == "indicator.error.metric" and "tenantpulse_events_total" in str(err)


def test_ml_alert_for_follows_sensitivity_and_rejects_unknown_model() -> None:
    am = AlertManager(channels=BASE["channels"], defaults=BASE["defaults"])
    spec = am.create_ml_alert("PlaysOdd", "plays_per_minute", 0.95, "high")
    assert spec.ml_alerts[0].for_ == "1m"
    spec = am.create_ml_alert("RevenueOdd", "revenue_rate", 0.9, "low")
    assert spec.ml_alerts[1].for_ == "15m"
    with pytest.raises(SpecError, match="unknown sensitivity 'extreme'; valid: high, medium, low"):
        am.create_ml_alert("X", "plays_per_minute", 0.9, "extreme")
    with pytest.raises(SpecError, match="unknown model indicator 'plays'"):
        am.create_ml_alert("Y", "plays", 0.9)
    assert am.spec().alert_names() == ["PlaysOdd", "RevenueOdd"]  # failed calls left nothing behind


def test_condition_precedence_and_truth() -> None:
    cond = parse_condition("error_rate > 0.1 or p95_latency > 1 and request_rate > 5")
    assert [len(g) for g in cond.groups] == [1, 2]
    assert cond.holds([0.2, 0, 0]) and not cond.holds([0.0, 2, 1]) and cond.holds([0.0, 2, 6])
    assert " or " in cond.promql(["acme"]) and 'tenant="acme"' in cond.promql(["acme"])


def test_template_rendering_matches_prometheus_helpers() -> None:
    assert humanize(0.5) == "500m" and humanize(1234567) == "1.235M" and humanize(1e-5) == "10u"
    text = '{{ $labels.tenant }}: {{ $value | humanizePercentage }} ({{ printf "%.2f" $value }})'
    check_template(text)
    assert render(text, {"tenant": "acme"}, 0.02) == "acme: 2% (0.02)"


def test_keywords_are_case_insensitive_and_ml_alerts_refuse_labels() -> None:
    assert [
        len(g) for g in parse_condition("error_rate > 0.1 AND request_rate > 2 OR p95_latency > 1").groups
    ] == [2, 1]
    spec = copy.deepcopy(BASE)
    spec["ml_alerts"] = [{"name": "Odd", "model": "error_rate", "labels": {"team": "x"}}]
    err = refused(spec)
    assert (err.item, err.field) == ("Odd", "labels")


def test_slo_indicator_parts_must_be_comparable_rates() -> None:
    for ind in (
        {"error": "error_rate", "total": "request_rate"},
        {"good": "plays_per_minute", "total": "request_rate"},
    ):
        err = refused({**BASE, "slos": [{"name": "s", "objective": 0.99, "indicator": ind}]})
        assert (err.item, err.field) == ("s", "indicator") and "same unit" in str(err)
    mixed = {"error": "errors_per_second", "total": {"metric": "tenantpulse_events_total"}}
    assert "not one of each" in str(
        refused({**BASE, "slos": [{"name": "s", "objective": 0.99, "indicator": mixed}]})
    )


def test_exact_comparison_only_on_reported_gauges() -> None:
    err = refused(with_alert(condition="request_rate != 0"))
    assert err.field == "condition" and "float noise" in str(err)
    assert parse_spec(with_alert(condition="active_users == 0")).alerts[0].condition is not None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
FULL: dict[str, Any] = {
    **BASE,
    "channels": {**BASE["channels"], "email": {"to": "a@b.c", "from": "c@d.e", "smarthost": "mail:25"}},
    "routing": {"group_wait": "1s"},
    "ml_alerts": [{"name": "Odd", "model": "plays_per_minute", "threshold": 0.9}],
    "slos": [
        {
            "name": "s",
            "objective": 0.999,
            "indicator": {"error": "errors_per_second", "total": "request_rate"},
        }
    ],
}
PLACES = [
    ("defaults",),
    ("channels", "slack"),
    ("channels", "email", "smarthost"),
    ("actions", "scale_up"),
    ("routing", "group_wait"),
    ("alerts", 0),
    ("alerts", 0, "condition"),
    ("alerts", 0, "channels"),
    ("alerts", 0, "tenants"),
    ("alerts", 0, "labels"),
    ("alerts", 0, "summary"),
    ("ml_alerts", 0, "threshold"),
    ("slos", 0, "indicator"),
    ("slos", 0, "for"),
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PLACES), JSON)
def test_any_value_anywhere_is_accepted_or_a_spec_error(place: tuple[Any, ...], value: Any) -> None:
    """No input makes the parser or generators crash with anything but a SpecError (never a traceback)."""
    spec = copy.deepcopy(FULL)
    node = spec
    for key in place[:-1]:
        node = node[key]
    node[place[-1]] = value
    try:
        parsed = parse_spec(spec)
    except SpecError:
        return
    rule_groups(parsed)
    alertmanager_config(parsed)
