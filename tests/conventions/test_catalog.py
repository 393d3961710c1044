"""The catalog follows Prometheus naming rules, and every indicator compiles to PromQL that promtool accepts."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tenantpulse.conventions import catalog, indicators
from tests.support.prometheus import require

NAME_RE = re.compile(r"^tenantpulse_[a-z0-9_]+$")


@pytest.mark.parametrize("metric", catalog.ALL, ids=lambda m: m.name)
def test_metric_names_follow_conventions(metric: catalog.Metric) -> None:
    assert NAME_RE.match(metric.name)
    assert metric.name.endswith("_total") == (metric.type == "counter")
    if metric.unit:
        assert metric.name.removesuffix("_total").endswith(metric.unit)
    assert metric.help.endswith(".")
    assert bool(metric.buckets) == (metric.type == "histogram")


def test_selector_refuses_unknown_labels() -> None:
    with pytest.raises(ValueError, match="no label"):
        catalog.EVENTS.selector(user_id="u1")
    assert catalog.EVENTS.selector(tenant="t1") == 'tenantpulse_events_total{tenant="t1"}'


def test_tenant_matcher_rejects_unsafe_ids() -> None:
    with pytest.raises(ValueError, match="invalid tenant"):
        indicators.get("request_rate").promql(['t1"} or vector(1) #'])


def test_unknown_indicator_names_choices() -> None:
    with pytest.raises(KeyError, match="valid: .*error_rate"):
        indicators.get("eror_rate")


@pytest.mark.parametrize("tenants", [None, ["t1"], ["t1", "acme.eu"]])
def test_every_indicator_is_valid_promql(tmp_path, tenants) -> None:
    promtool = require("promtool")
    rules = [
        {"record": f"tenant:{name}:test", "expr": ind.promql(tenants)}
        for name, ind in indicators.INDICATORS.items()
    ]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "indicators", "rules": rules}]}))
    out = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("bad", ["t1\n", "", "-t1", "t 1", 'a"b', "x" * 64])
def test_valid_tenant_id_checks_the_whole_string(bad: str) -> None:
    assert not catalog.valid_tenant_id(bad)
    with pytest.raises(ValueError, match="invalid tenant"):
        indicators.get("request_rate").promql([bad, "t2"])
