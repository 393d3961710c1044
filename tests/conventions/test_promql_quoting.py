"""Label values from specs are data, never PromQL syntax (issue 13, part 4).

A dashboard spec's ``labels`` or an SLO's ``match`` value such as ``x"}[5m]) or rate(...{tenant=~".+``
used to be pasted between quotes as it was, which made a valid query that read every tenant. Every
selector is built by ``catalog.Metric.selector``, which now quotes values with
``conventions.promql.promql_string``. Proven with Prometheus's own engine: ``promtool test rules``
evaluates the generated expressions over series of two tenants, one of which carries the hostile value
literally; the answer must be that one series' tenant, with its value, and nothing of the other tenant.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tenantpulse.alert_rules import slo
from tenantpulse.alert_rules.spec import parse_spec
from tenantpulse.conventions import catalog as c
from tenantpulse.conventions.promql import promql_string
from tenantpulse.grafana import custom
from tenantpulse.grafana import spec as dashboard_spec
from tests.support.prometheus import require

HOSTILE = 'x"}[5m]) or rate(tenantpulse_events_total{tenant=~".+'
# The same value as written in promtool's series notation, by hand (not by the function under test).
HOSTILE_IN_SERIES = 'x\\"}[5m]) or rate(tenantpulse_events_total{tenant=~\\".+'

# Per-second rates over 5m: t1's hostile-labelled series 1/s, its song plays 10/s; t2's 100/s.
INPUT_SERIES = [
    {
        "series": f'tenantpulse_events_total{{tenant="t1",event_type="{HOSTILE_IN_SERIES}"}}',
        "values": "0+60x10",
    },
    {"series": 'tenantpulse_events_total{tenant="t1",event_type="song_play"}', "values": "0+600x10"},
    {"series": 'tenantpulse_events_total{tenant="t2",event_type="song_play"}', "values": "0+6000x10"},
]


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("plain", '"plain"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("a\nb", '"a\\nb"'),
        ("\\", '"\\\\"'),
        ('"}', '"\\"}"'),
        ("é ☃", '"é ☃"'),
    ],
)
def test_promql_string(value: str, literal: str) -> None:
    assert promql_string(value) == literal


def test_selector_values_stay_one_literal() -> None:
    sel = c.EVENTS.selector(tenant="t1", event_type=HOSTILE)
    assert sel == f'tenantpulse_events_total{{tenant="t1",event_type={promql_string(HOSTILE)}}}'
    assert c.EVENTS.selector(event_type="=~a\\.b") == 'tenantpulse_events_total{event_type=~"a\\\\.b"}'


def _evaluate(tmp_path: Path, expr: str, expected: list[dict[str, str]]) -> subprocess.CompletedProcess[str]:
    promtool = require("promtool")
    (tmp_path / "empty.yml").write_text("groups: []\n")
    test = {
        "rule_files": ["empty.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": INPUT_SERIES,
                "promql_expr_test": [{"expr": expr, "eval_time": "10m", "exp_samples": expected}],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    return subprocess.run(
        [promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def test_a_dashboard_label_value_selects_only_itself(tmp_path: Path) -> None:
    component = dashboard_spec.component(
        {"type": "chart", "metric": c.EVENTS.name, "labels": {"event_type": HOSTILE}}
    )
    (query,) = custom._queries(component)
    expr = query.expr.replace("$tenant", "t1").replace("$__rate_interval", "5m")
    out = _evaluate(tmp_path, expr, [{"labels": '{tenant="t1"}', "value": 1}])
    assert out.returncode == 0, f"{expr}\n{out.stdout}{out.stderr}"


def test_an_slo_match_value_selects_only_itself(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "slos": [
                {
                    "name": "hostile",
                    "objective": 0.99,
                    "period": "30d",
                    "runbook_url": "https://runbooks.example/hostile",
                    "indicator": {
                        "error": {"metric": c.EVENTS.name, "match": {"event_type": HOSTILE}},
                        "total": {"metric": c.EVENTS.name},
                    },
                }
            ]
        }
    )
    expr = slo.ratio_expr(spec.slos[0], "5m")
    # t1: 1 of its 11 events per second carry the value; t2: none of its (the ratio is 0, not t1's).
    expected = [{"labels": '{tenant="t1"}', "value": 1 / 11}, {"labels": '{tenant="t2"}', "value": 0}]
    out = _evaluate(tmp_path, expr, expected)
    assert out.returncode == 0, f"{expr}\n{out.stdout}{out.stderr}"
