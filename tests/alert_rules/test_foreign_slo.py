"""OpenSLO v1 and Sloth prometheus/v1 input: converted SLOs pass promtool, and what cannot map is refused
naming the file and the foreign field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tenantpulse.alert_rules import checks, slo
from tenantpulse.alert_rules.rules import RULES_FILE, TESTS_FILE, write_rules
from tenantpulse.alert_rules.spec import load_spec
from tenantpulse.cli import main
from tenantpulse.kernel.errors import SpecError
from tests.support.prometheus import require

FIXTURES = Path(__file__).parent / "fixtures"
OPENSLO = FIXTURES / "openslo.yaml"
SLOTH = FIXTURES / "sloth.yaml"


def test_openslo_maps_target_window_and_good_ratio() -> None:
    (s,) = load_spec(OPENSLO).slos
    assert (s.name, s.objective, s.period, s.kind) == ("event_availability", 0.995, "28d", "good")
    assert s.part.metric is not None and s.part.metric.name == "tenantpulse_events_total"
    assert s.part.match == {"event_type": "page_view"} and s.total.match == {}
    assert s.runbook_url == "https://runbooks.example/event-availability"
    assert 'tenantpulse_events_total{tenant!="",event_type="page_view"}' in slo.ratio_expr(s, "1h")


def test_sloth_maps_percent_objectives_and_error_queries() -> None:
    a, b = load_spec(SLOTH).slos
    assert (a.name, a.objective, a.period, a.kind) == ("ingest_events_errors", 0.999, "30d", "error")
    assert (b.name, b.objective) == ("ingest_rejections", 0.99)
    assert b.part.metric is not None and b.part.metric.name == "tenantpulse_ingest_rejected_total"
    assert b.part.match == {"reason": "quota"}


@pytest.mark.integration
@pytest.mark.parametrize("fixture", [OPENSLO, SLOTH], ids=["openslo", "sloth"])
def test_converted_rules_pass_promtool_check_and_generated_tests(fixture: Path, tmp_path: Path) -> None:
    require("promtool")
    spec = load_spec(fixture)
    write_rules(spec, tmp_path)
    assert "SUCCESS" in checks.check_rules(tmp_path / RULES_FILE)
    checks.test_rules(tmp_path / TESTS_FILE)
    alerts = {
        r["alert"]
        for g in yaml.safe_load((tmp_path / RULES_FILE).read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    assert {s.alert_name for s in spec.slos} <= alerts


def test_cli_generates_rules_from_openslo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require("promtool")
    assert main(["generate", "rules", "--spec", str(OPENSLO), "--out", str(tmp_path), "--check"]) == 0
    assert "ok: promtool check rules and promtool test rules passed" in capsys.readouterr().out


def _openslo(**changes: object) -> dict:
    doc = yaml.safe_load(OPENSLO.read_text())
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = doc
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[last] = value
    return doc


RATIO = "spec__indicator__spec__ratioMetric"


@pytest.mark.parametrize(
    ("doc", "field", "needle"),
    [
        (_openslo(spec__objectives__0__target=1.5), "spec.objectives[0].target", "must be in (0, 1)"),
        (
            _openslo(spec__objectives__0__target=0.5),
            "spec.objectives[0].target",
            "can never page",
        ),  # burn check, renamed
        (
            _openslo(spec__objectives=[{"target": 0.9}, {"target": 0.99}]),
            "spec.objectives",
            "exactly one objective",
        ),
        (
            _openslo(spec__timeWindow=[{"duration": "1M", "calendar": {"startTime": "2024-01-01"}}]),
            "spec.timeWindow[0].isRolling",
            "calendar windows",
        ),
        (_openslo(spec__timeWindow=[{"duration": "1M"}]), "spec.timeWindow[0].duration", "no M, Q, Y"),
        (_openslo(spec__budgetingMethod="Timeslices"), "spec.budgetingMethod", "valid: Occurrences"),
        (
            _openslo(spec__indicator__spec={"thresholdMetric": {"metricSource": {}}}),
            "spec.indicator.spec.thresholdMetric",
            "only ratioMetric",
        ),
        (
            _openslo(**{f"{RATIO}__good__metricSource__type": "Datadog"}),
            f"{RATIO.replace('__', '.')}.good.metricSource.type",
            "valid: Prometheus",
        ),
        (
            _openslo(**{f"{RATIO}__good__metricSource__spec__query": 'sum(rate(x{code=~"5.."}[5m]))'}),
            f"{RATIO.replace('__', '.')}.good.metricSource.spec.query",
            "only exact matches",
        ),
        (
            _openslo(**{f"{RATIO}__good__metricSource__spec__query": "histogram_quantile(0.9, x)"}),
            f"{RATIO.replace('__', '.')}.good.metricSource.spec.query",
            "unsupported query",
        ),
        (
            _openslo(**{f"{RATIO}__good__metricSource__spec__query": "sum(rate(http_requests_total[5m]))"}),
            f"{RATIO.replace('__', '.')}.good.metricSource.spec.query",
            "unknown counter metric 'http_requests_total'",
        ),
        (_openslo(metadata={"name": "x-y"}), "metadata.annotations.runbook_url", "missing runbook URL"),
        (_openslo(kind="SLI"), "kind", "valid: SLO"),
        (_openslo(apiVersion="openslo/v2alpha"), "apiVersion", "valid: openslo/v1"),
    ],
)
def test_openslo_refusals_name_file_and_field(doc: dict, field: str, needle: str, tmp_path: Path) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    assert exc.value.field == field and needle in exc.value.reason
    assert str(exc.value).startswith(f"{path}: field {field!r}: ")


@pytest.mark.parametrize(
    ("change", "field", "needle"),
    [
        ({"objective": 100}, "slos[0].objective", "must be in (0, 100)"),
        ({"sli": {"raw": {"error_ratio_query": "x"}}}, "slos[0].sli.raw", "only sli.events"),
        ({"sli": {"plugin": {"id": "x"}}}, "slos[0].sli.plugin", "only sli.events"),
        (
            {"alerting": {"annotations": {"runbook": "https://rb"}, "ticket_alert": {"disable": True}}},
            "slos[0].alerting.ticket_alert.disable",
            "always pages and tickets",
        ),
        (
            {
                "sli": {
                    "events": {
                        "error_query": 'sum(rate(tenantpulse_events_total{tenant="a"}[5m]))',
                        "total_query": "sum(rate(tenantpulse_events_total[5m]))",
                    }
                }
            },
            "slos[0].sli.events.error_query",
            "tenant label is added by the bundle",
        ),
        (
            {
                "sli": {
                    "events": {
                        "error_query": 'sum(rate(tenantpulse_events_total{colour="red"}[5m]))',
                        "total_query": "sum(rate(tenantpulse_events_total[5m]))",
                    }
                }
            },
            "slos[0].sli.events.error_query",
            "no label(s) ['colour']",
        ),
    ],
)
def test_sloth_refusals_name_file_and_field(change: dict, field: str, needle: str, tmp_path: Path) -> None:
    doc = yaml.safe_load(SLOTH.read_text())
    doc["slos"][0].update(change)
    path = tmp_path / "sloth.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    assert exc.value.field == field and needle in exc.value.reason


def test_cli_refusal_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(_openslo(spec__objectives=[{"target": 0.9}, {"target": 0.99}])))
    assert main(["generate", "rules", "--spec", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"error: {path}: field 'spec.objectives': exactly one objective" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
