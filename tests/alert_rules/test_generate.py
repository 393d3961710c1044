"""Generated files against the real validators: promtool check/test rules, amtool check-config and
route tests, the PrometheusRule CRD schema; and proof that the generated unit tests catch broken rules."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tenantpulse.alert_rules import checks, rule_tests, slo
from tenantpulse.alert_rules.alertmanager import write_alertmanager
from tenantpulse.alert_rules.checks import CheckFailed
from tenantpulse.alert_rules.rules import PROMETHEUS_RULE_FILE, RULES_FILE, TESTS_FILE, write_rules
from tenantpulse.alert_rules.spec import load_spec
from tenantpulse.cli import main
from tenantpulse.conventions import indicators
from tests.support.alertmanager import routes_to
from tests.support.prometheus import require
from tests.support.shared import crd_dir

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "alerts.yaml"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require("promtool")
    out = tmp_path_factory.mktemp("rules")
    write_rules(load_spec(EXAMPLE), out)
    return out


def test_example_rules_pass_promtool_check_and_generated_unit_tests(generated: Path) -> None:
    assert "SUCCESS" in checks.check_rules(generated / RULES_FILE)
    assert "SUCCESS" in checks.test_rules(generated / TESTS_FILE)


def test_every_alert_has_a_firing_and_a_quiet_case(generated: Path) -> None:
    spec = load_spec(EXAMPLE)
    tests = yaml.safe_load((generated / TESTS_FILE).read_text())["tests"]
    by_alert: dict[str, list[int]] = {}
    for group in tests:
        for case in group["alert_rule_test"]:
            by_alert.setdefault(case["alertname"], []).append(len(case["exp_alerts"]))
    assert set(by_alert) == set(spec.alert_names())
    for name, expected_counts in by_alert.items():
        assert 0 in expected_counts and any(expected_counts), name


@pytest.mark.parametrize(
    ("alert", "broken", "fixed"),
    [
        ("TenantHighErrorRate", ") > 0.05", ") > 0.5"),  # threshold too high: the firing case fails
        ("PlaysDropped", ") < 10", ") < 100"),  # too eager: the quiet case fails
        ("PlaysAnomaly", "for: 5m", "for: 30m"),  # fires too late for the firing case
    ],
)
def test_generated_unit_tests_catch_a_broken_rule(
    generated: Path, tmp_path: Path, alert: str, broken: str, fixed: str
) -> None:
    rules = (generated / RULES_FILE).read_text()
    start = rules.index(f"- alert: {alert}\n")
    end = rules.find("- alert:", start + 1)
    block = rules[start:end]
    assert broken in block
    (tmp_path / RULES_FILE).write_text(rules[:start] + block.replace(broken, fixed, 1) + rules[end:])
    tests = yaml.safe_load((generated / TESTS_FILE).read_text())
    tests["tests"] = [g for g in tests["tests"] if g["alert_rule_test"][0]["alertname"] == alert]
    (tmp_path / TESTS_FILE).write_text(yaml.safe_dump(tests))
    with pytest.raises(CheckFailed, match=alert):
        checks.test_rules(tmp_path / TESTS_FILE)


def test_prometheus_rule_matches_rule_file_and_crd_schema(generated: Path) -> None:
    obj = yaml.safe_load((generated / PROMETHEUS_RULE_FILE).read_text())
    assert obj["apiVersion"] == "monitoring.coreos.com/v1" and obj["kind"] == "PrometheusRule"
    assert obj["spec"]["groups"] == yaml.safe_load((generated / RULES_FILE).read_text())["groups"]
    schema_file = crd_dir() / "PrometheusRule.monitoring.coreos.com_v1.schema.json"
    import jsonschema

    jsonschema.validate(obj, json.loads(schema_file.read_text()))


def test_slo_recording_rules_and_burn_windows(generated: Path) -> None:
    spec = load_spec(EXAMPLE)
    s = spec.slos[0]
    names = slo.recording_rule_names(s)
    assert slo.windows(s) == ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")  # the workbook's, for 30d
    assert [names[w] for w in slo.windows(s)] == [
        f"tenant:tenantpulse_slo_errors:ratio_rate{w}" for w in slo.windows(s)
    ]
    groups = yaml.safe_load((generated / RULES_FILE).read_text())["groups"]
    group = next(g for g in groups if g["name"] == f"tenantpulse-slo-{s.name}")
    recorded = {(r["record"], r["labels"]["slo"]) for r in group["rules"] if "record" in r}
    assert {(n, s.name) for n in names.values()} <= recorded
    page, ticket, no_data = (r for r in group["rules"] if "alert" in r)
    assert no_data["alert"] == "EventSuccessSLINoData" and " unless " in no_data["expr"]
    assert page["labels"]["severity"] == "critical" and ticket["labels"]["severity"] == "warning"
    assert "> (14.4 * 0.001)" in page["expr"] and slo.selector(s, "5m") in page["expr"]
    assert "> (6.0 * 0.001)" in page["expr"] and slo.selector(s, "30m") in page["expr"]
    assert "> (3.0 * 0.001)" in ticket["expr"] and slo.selector(s, "2h") in ticket["expr"]
    assert "> (1.0 * 0.001)" in ticket["expr"] and slo.selector(s, "3d") in ticket["expr"]


def test_every_indicator_can_be_synthesised(tmp_path: Path) -> None:
    """New indicators in exporters.indicators need a model here, or condition alerts on them get no tests."""
    assert set(rule_tests.MODELS) == set(indicators.INDICATORS)
    test_files = []
    for i, name in enumerate(sorted(indicators.INDICATORS)):
        alerts = [
            {"name": f"Above{i}", "condition": f"{name}[20m] > 0.5", "for": "1m"},  # window > 10m margin
            {"name": f"Below{i}", "condition": f"{name} <= 0.3", "for": "1m"},
        ]
        spec_file = tmp_path / f"{name}.yaml"
        spec_file.write_text(yaml.safe_dump({"defaults": {"runbook_base": "https://rb"}, "alerts": alerts}))
        write_rules(load_spec(spec_file), tmp_path / name)
        test_files.append(str(tmp_path / name / TESTS_FILE))
    proc = subprocess.run(["promtool", "test", "rules", *test_files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_alertmanager_config_passes_amtool_and_routes_by_severity_and_channel(tmp_path: Path) -> None:
    require("amtool")
    config = write_alertmanager(load_spec(EXAMPLE), tmp_path)[0]
    assert "SUCCESS" in checks.check_alertmanager(config)
    doc = yaml.safe_load(config.read_text())
    assert doc["route"]["group_by"] == ["alertname", "tenant"]
    assert doc["inhibit_rules"][0]["equal"] == ["alertname", "tenant"]
    slack = next(r for r in doc["receivers"] if r["name"] == "slack-critical")["slack_configs"][0]
    assert (
        slack["api_url_file"] == "/etc/alertmanager/secrets/slack-webhook-url"
        and slack["channel"] == "#oncall-page"
    )

    assert routes_to(
        config,
        "severity=critical",
        "tenant=a",
        "tenantpulse_channels=slack,email",
        "tenantpulse_actions=notify_oncall",
    ) == {"slack-critical", "email", "action-notify_oncall"}
    assert routes_to(
        config, "severity=warning", "tenantpulse_channels=slack", "tenantpulse_actions=scale_up"
    ) == {
        "slack-warning",
        "action-scale_up",
    }
    assert routes_to(config, "severity=info", "tenantpulse_channels=email") == {"email"}
    assert routes_to(config, "severity=warning") == {
        "tenantpulse-default"
    }  # no channel, no action: not dropped


def test_cli_generates_checks_and_refuses_bad_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "generate",
        "rules",
        "--spec",
        str(EXAMPLE),
        "--out",
        str(tmp_path / "r"),
        "--check",
        "--namespace",
        "mon",
    ]
    assert main(args) == 0
    assert (
        yaml.safe_load((tmp_path / "r" / PROMETHEUS_RULE_FILE).read_text())["metadata"]["namespace"] == "mon"
    )
    assert (
        main(["generate", "alertmanager", "--spec", str(EXAMPLE), "--out", str(tmp_path / "a"), "--check"])
        == 0
    )
    assert (tmp_path / "a" / "tenantpulse.tmpl").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "alerts:\n- name: Oops\n  condition: error_rate > 0.1\n  severity: urgent\n  runbook_url: http://x\n"
    )
    assert main(["generate", "rules", "--spec", str(bad), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    where = f"error: {bad}: alert 'Oops': field 'severity': "  # the file, the alert, the field, on one line
    assert where + "unknown severity 'urgent'; valid: critical, warning, info" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (
        main(["generate", "rules", "--spec", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "x")])
        == 2
    )


def test_raw_expr_that_promtool_rejects_fails_the_check(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    test = {
        "tenant": "a",
        "value": 1,
        "firing": [{"series": 'up{tenant="a"}', "values": "1+0x20"}],
        "quiet": [],
    }
    raw = {
        "name": "Broken",
        "expr": "sum by (tenant) (rate(up[5m]) >",
        "runbook_url": "http://x",
        "test": test,
    }
    spec.write_text(yaml.safe_dump({"alerts": [raw]}))
    write_rules(load_spec(spec), tmp_path)
    with pytest.raises(CheckFailed, match="Broken"):
        checks.check_rules(tmp_path / RULES_FILE)


def test_python_facade_with_indicator_and_scoped_slos_passes_promtool(tmp_path: Path) -> None:
    from tenantpulse.alert_rules.manager import AlertManager

    am = AlertManager(
        channels={"slack": {"api_url_file": "/run/secrets/slack"}}, defaults={"runbook_base": "https://rb"}
    )
    am.create_alert("HighErrorRate", "error_rate > 0.05", for_="5m", severity="critical", tenants=["acme"])
    am.create_ml_alert("PlaysAnomaly", model="plays_per_minute", threshold=0.9, sensitivity="high")
    am.create_slo("by_indicator", 0.999, {"error": "errors_per_second", "total": "request_rate"})
    events = {"metric": "tenantpulse_events_total"}
    am.create_slo(
        "scoped",
        0.995,
        {"error": {**events, "match": {"event_type": "error"}}, "total": events},
        tenants=["acme", "globex"],
    )
    am.write(tmp_path / "rules", tmp_path / "am")
    assert "SUCCESS" in checks.test_rules(tmp_path / "rules" / TESTS_FILE)
    assert "SUCCESS" in checks.check_alertmanager(tmp_path / "am" / "alertmanager.yml")
    tests = yaml.safe_load((tmp_path / "rules" / TESTS_FILE).read_text())["tests"]
    scoped = next(g for g in tests if g["name"] == "ScopedErrorBudgetBurn pages and tickets")
    tenants = {s["series"].split('tenant="')[1].split('"')[0] for s in scoped["input_series"]}
    assert tenants == {"acme", "tenant-b", "tenant-out-of-scope"}  # the outsider burns too, yet no alert


def test_random_conditions_either_get_passing_tests_or_a_clear_refusal(tmp_path: Path) -> None:
    """Whatever condition the generator accepts, promtool agrees with its predicted firing/quiet cases."""
    import random

    from tenantpulse.alert_rules.spec import parse_spec
    from tenantpulse.kernel.errors import SpecError

    rng = random.Random(20261125)
    names = sorted(indicators.INDICATORS)
    thresholds = [0, 0.001, 0.05, 0.24, 0.5, 0.99, 2, 10, 250, 1000]
    test_files, refused = [], []
    for i in range(40):
        clauses = [
            f"{rng.choice(names)}{rng.choice(['', '[2m]', '[15m]'])} {rng.choice(['>', '>=', '<', '<='])} "
            f"{rng.choice(thresholds)}"
            for _ in range(rng.choice([1, 2, 3]))
        ]
        condition = clauses[0] + "".join(f" {rng.choice(['and', 'or'])} {c}" for c in clauses[1:])
        alert = {"name": f"R{i}", "condition": condition, "for": rng.choice(["0s", "1m", "3m"])}
        spec = parse_spec({"defaults": {"runbook_base": "https://rb"}, "alerts": [alert]})
        try:
            write_rules(spec, tmp_path / f"r{i}")
        except SpecError as exc:
            assert exc.field == "condition" and "test inputs" in str(exc)
            refused.append(condition)
            continue
        test_files.append(str(tmp_path / f"r{i}" / TESTS_FILE))
    assert len(test_files) >= 20, refused  # the rest are tautologies such as p95_latency >= 0
    proc = subprocess.run(["promtool", "test", "rules", *test_files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
