"""``otel.exporter: jaeger`` in the chart: the same Jaeger environment for every deployment, refused bad
values, and a real ``tenantpulse`` run with exactly the rendered environment reaching a Thrift receiver."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python
import pytest

from tests.helm.test_chart import NAMESPACE, chart, of_kind, render  # noqa: F401 - chart is a fixture
from tests.helm.test_chart import SCENARIOS as CHART_SCENARIOS
from tests.support.jaeger_extra import require_jaeger_extra

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR = "http://jaeger-collector.tracing.svc:14268/api/traces"


def with_otel(otel: dict[str, Any]) -> dict[str, Any]:
    """The production scenario (exporter, sidecar shards and gateway all on) with these otel values."""
    values = copy.deepcopy(CHART_SCENARIOS["production"])
    values["otel"] = otel
    return values


def otel_env(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Each Deployment's OTEL_* variables but its service name, by Deployment name."""
    out = {}
    for dep in of_kind(docs, "Deployment"):
        env = dep["spec"]["template"]["spec"]["containers"][0]["env"]
        out[dep["metadata"]["name"]] = {
            e["name"]: e["value"]
            for e in env
            if e["name"].startswith("OTEL_") and e["name"] != "OTEL_SERVICE_NAME"
        }
    return out


def test_collector_endpoint_reaches_every_deployment(chart: helm_python.Chart) -> None:  # noqa: F811
    envs = otel_env(render(chart, with_otel({"exporter": "jaeger", "jaeger": {"endpoint": COLLECTOR}})))
    assert any("gateway" in n for n in envs) and any("sidecar" in n for n in envs)
    assert any(n.endswith("-exporter") for n in envs)
    for name, env in envs.items():
        assert env["OTEL_TRACES_EXPORTER"] == "jaeger", name
        assert env["OTEL_EXPORTER_JAEGER_ENDPOINT"] == COLLECTOR
        assert "OTEL_EXPORTER_JAEGER_AGENT_HOST" not in env
        assert not any(k.startswith("OTEL_EXPORTER_OTLP") for k in env)
        assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert len({tuple(sorted(env.items())) for env in envs.values()}) == 1  # the same for every deployment


def test_agent_is_the_default_transport_and_otlp_the_default_exporter(chart: helm_python.Chart) -> None:  # noqa: F811
    for env in otel_env(render(chart, with_otel({"exporter": "jaeger"}))).values():
        assert env["OTEL_EXPORTER_JAEGER_AGENT_HOST"] == "localhost"
        assert env["OTEL_EXPORTER_JAEGER_AGENT_PORT"] == "6831"
        assert "OTEL_EXPORTER_JAEGER_ENDPOINT" not in env
    for env in otel_env(render(chart, CHART_SCENARIOS["production"])).values():
        assert "OTEL_TRACES_EXPORTER" not in env and not any("JAEGER" in k for k in env)
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger-collector.tracing.svc:4318"
    for env in otel_env(render(chart, {})).values():
        assert env["OTEL_TRACES_EXPORTER"] == "none"


@pytest.mark.parametrize(
    ("otel", "key"),
    [
        ({"exporter": "zipkin"}, "exporter"),
        ({"exporter": "jaeger", "jaeger": {"agentPort": 0}}, "agentPort"),
        ({"exporter": "jaeger", "jaeger": {"endpoint": "jaeger-collector:14268"}}, "endpoint"),
        ({"exporter": "jaeger", "jaeger": {"agentHost": ""}}, "agentHost"),
        ({"exporter": "jaeger", "jaeger": {"port": 6831}}, "port"),
    ],
)
def test_schema_refuses_bad_jaeger_values_naming_the_key(
    chart: helm_python.Chart,  # noqa: F811
    otel: dict[str, Any],
    key: str,
) -> None:
    with pytest.raises(helm_python.HelmValuesError) as refused:
        chart.validate_schema(chart.merge_values({"otel": otel}))
    assert key in str(refused.value)


@pytest.mark.parametrize("transport", ["agent", "collector"])
def test_rendered_environment_sends_a_real_run_to_jaeger(
    chart: helm_python.Chart,  # noqa: F811
    tmp_path: Path,
    transport: str,
) -> None:
    require_jaeger_extra()
    from tests.support.jaeger_receiver import JaegerReceiver

    with JaegerReceiver() as receiver:
        jaeger = (
            {"agentHost": "127.0.0.1", "agentPort": receiver.agent_port}
            if transport == "agent"
            else {"endpoint": receiver.collector_url}
        )
        docs = render(chart, with_otel({"exporter": "jaeger", "jaeger": jaeger, "samplingRatio": 1}))
        (env,) = [e for n, e in otel_env(docs).items() if n.endswith("-exporter")]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        done = subprocess.run(
            [sys.executable, "-m", "tenantpulse.cli", "generate", "dashboards"]
            + ["--spec", "examples/dashboards.yaml", "--out", str(tmp_path)],
            env=clean | env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        (span,) = receiver.wait_for(lambda s: s.name == "tenantpulse generate dashboards")
    assert span.service == "tenantpulse-generate"
    assert span.attributes["service.namespace"] == NAMESPACE  # OTEL_RESOURCE_ATTRIBUTES as rendered
    assert set(receiver.batches) == {transport}
