"""``OTEL_TRACES_EXPORTER=jaeger``: real processes export Jaeger Thrift to a loopback agent (UDP) and
collector (HTTP), decoded with the exporter package's own Thrift classes. Skipped without the extra
(tests/otel/test_jaeger_settings.py covers that case).

The same checks as the OTLP tests: one server span per ingest request with tenant, batch size and
result, continuing the caller's ``traceparent``; the sidecar's cycle with one query span per indicator
and its backfill trace; the gateway's request span continuing the caller's trace into Prometheus.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from opentelemetry.trace import SpanKind

from tenantpulse.conventions import indicators
from tenantpulse.kernel.durations import format_duration
from tenantpulse.otel.tracing import build_provider
from tests.support.exporter import write_keys_file
from tests.support.gateway import Gateway
from tests.support.jaeger_extra import require_jaeger_extra
from tests.support.ports import free_port, wait_until
from tests.support.prometheus import Prometheus

require_jaeger_extra()
from tests.support.jaeger_receiver import JaegerReceiver  # noqa: E402 - needs the extra

ROOT = Path(__file__).resolve().parents[2]
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRANSPORTS = ("agent", "collector")


def clean_env(**env: str) -> dict[str, str]:
    """This process's environment without any OTEL_* setting, plus ``env``."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | env


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tenantpulse.cli", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
            cwd=ROOT,
        )


@pytest.fixture()
def receiver() -> Iterator[JaegerReceiver]:
    with JaegerReceiver() as r:
        yield r


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_provider_exports_parent_and_child_over_each_transport(
    receiver: JaegerReceiver, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    for var in [v for v in os.environ if v.startswith("OTEL_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jaeger")
    for var, value in receiver.env(transport).items():
        monkeypatch.setenv(var, value)
    provider = build_provider("tenantpulse-test")
    assert provider is not None
    tracer = provider.get_tracer("t")
    with (
        tracer.start_as_current_span("outer") as outer,
        tracer.start_as_current_span("inner", kind=SpanKind.CLIENT),
    ):
        pass
    provider.shutdown()  # flushes the batch processor; a datagram may still be on its way to the agent
    spans = {s.name: s for s in receiver.wait_for(lambda s: True, count=2)}
    assert set(spans) == {"outer", "inner"}
    assert spans["inner"].parent_span_id == spans["outer"].span_id
    assert (
        spans["inner"].trace_id
        == spans["outer"].trace_id
        == format(outer.get_span_context().trace_id, "032x")
    )
    assert spans["outer"].parent_span_id == ""
    assert spans["inner"].kind == "client"
    assert {s.service for s in spans.values()} == {"tenantpulse-test"}
    assert receiver.batches == {transport: 1}


def test_a_batch_bigger_than_a_datagram_reaches_the_agent_whole(
    receiver: JaegerReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package drops a batch over 65,000 bytes unless told to split it; a busy exporter makes such batches."""
    for var in [v for v in os.environ if v.startswith("OTEL_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jaeger")
    for var, value in receiver.env("agent").items():
        monkeypatch.setenv(var, value)
    provider = build_provider("tenantpulse-test")
    assert provider is not None
    tracer = provider.get_tracer("t")
    for i in range(200):  # one export batch (the processor sends up to 512 spans at once), ~200 kB
        with tracer.start_as_current_span(f"request {i}", attributes={"padding": "x" * 1000}):
            pass
    provider.shutdown()
    received = receiver.wait_for(lambda s: True, count=200, what="all 200 spans")
    assert sorted(s.name for s in received) == sorted(f"request {i}" for i in range(200))
    assert receiver.batches["agent"] > 1


# --- The real exporter, sidecar and CLI --------------------------------------------------------------


@pytest.fixture(scope="module", params=TRANSPORTS)
def traced_exporter(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(base url, receiver, keys) of an exporter process sending Jaeger Thrift over one transport."""
    workdir = tmp_path_factory.mktemp(f"jaeger-exporter-{request.param}")
    keys_file = workdir / "keys.yaml"
    keys = write_keys_file(keys_file, ["acme"])
    port = free_port()
    with JaegerReceiver() as receiver:
        env = clean_env(
            OTEL_TRACES_EXPORTER="jaeger", OTEL_BSP_SCHEDULE_DELAY="100", **receiver.env(request.param)
        )
        args = ["exporter", "--host", "127.0.0.1", "--port", str(port), "--api-keys", str(keys_file)]
        proc = start(args, env, workdir / "exporter.log")
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: requests.get(f"{url}/readyz", timeout=1).ok, what="exporter ready")
            yield url, receiver, keys, request.param
        finally:
            proc.terminate()
            proc.wait(10)


def post(url: str, key: str, events: list[dict], trace_id: str, parent: str) -> requests.Response:
    return requests.post(
        f"{url}/analytics/metrics",
        json={"events": events},
        headers={"Authorization": f"Bearer {key}", "traceparent": f"00-{trace_id}-{parent}-01"},
        timeout=10,
    )


def test_ingest_span_continues_the_callers_trace(traced_exporter) -> None:
    url, receiver, keys, transport = traced_exporter
    events = [
        {"tenant_id": "acme", "user_id": f"u-{i}", "event_type": "song_play", "metadata": {"duration_ms": 80}}
        for i in range(2)
    ]
    assert post(url, keys["acme"], events, CALLER_TRACE, CALLER_SPAN).status_code == 200
    (server,) = receiver.wait_for(lambda s: s.trace_id == CALLER_TRACE and s.kind == "server")
    assert server.parent_span_id == CALLER_SPAN
    assert server.service == "tenantpulse-exporter"
    assert server.name == "POST /analytics/metrics"
    assert server.attributes["tenantpulse.tenant"] == "acme"
    assert server.attributes["tenantpulse.batch_size"] == 2
    assert server.attributes["tenantpulse.result"] == "accepted"
    assert (
        server.attributes.get("http.response.status_code", server.attributes.get("http.status_code")) == 200
    )
    assert server.status != "error"
    assert set(receiver.batches) == {transport}


def test_rejected_request_span_says_why(traced_exporter) -> None:
    url, receiver, keys, _ = traced_exporter
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    r = post(
        url, keys["acme"], [{"tenant_id": "other", "event_type": "song_play"}], trace_id, "b7ad6b7169203331"
    )
    assert r.status_code == 403
    (server,) = receiver.wait_for(lambda s: s.trace_id == trace_id and s.kind == "server")
    assert server.attributes["tenantpulse.result"] == "forbidden"
    assert server.attributes["tenantpulse.tenant"] == "acme"


@pytest.mark.integration
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sidecar_cycle_and_backfill_have_their_query_spans(
    receiver: JaegerReceiver, tmp_path: Path, transport: str
) -> None:
    with Prometheus(tmp_path, scrape_configs=[]) as prometheus:
        env = clean_env(
            OTEL_TRACES_EXPORTER="jaeger", OTEL_BSP_SCHEDULE_DELAY="100", **receiver.env(transport)
        )
        args = [
            *("sidecar", "--prometheus-url", prometheus.url, "--port", str(free_port())),
            *("--interval", "1s", "--backfill", "10s", "--rate-window", "5m", "--forecast-every", "1h"),
        ]
        proc = start(args, env, tmp_path / "sidecar.log")
        try:
            (cycle, *_) = receiver.wait_for(lambda s: s.name == "sidecar cycle", what="a cycle span")
            children = receiver.wait_for(
                lambda s: s.parent_span_id == cycle.span_id,
                count=len(indicators.WATCHED),
                what="the cycle's query spans",
            )
            (backfill,) = receiver.wait_for(lambda s: s.name == "sidecar backfill", what="the backfill span")
            ranges = receiver.find(lambda s: s.parent_span_id == backfill.span_id)
        finally:
            proc.terminate()
            proc.wait(10)
    assert cycle.service == "tenantpulse-sidecar" and cycle.parent_span_id == ""
    assert cycle.attributes["tenantpulse.errors"] == 0
    expected = {ind.promql(window=format_duration(300)) for ind in map(indicators.get, indicators.WATCHED)}
    assert {s.attributes["db.query.text"] for s in children} == expected
    for child in children:
        assert (child.kind, child.name, child.trace_id) == ("client", "POST /api/v1/query", cycle.trace_id)
        assert child.attributes["db.system.name"] == "prometheus"
    # The backfill is its own trace: range queries plus the instant queries of the latency offset.
    assert backfill.trace_id != cycle.trace_id and backfill.parent_span_id == ""
    assert sum(s.name == "POST /api/v1/query_range" for s in ranges) >= len(indicators.WATCHED)
    assert all(s.trace_id == backfill.trace_id for s in ranges)
    assert set(receiver.batches) == {transport}


@pytest.mark.integration
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_gateway_query_continues_the_callers_trace_down_to_prometheus(
    receiver: JaegerReceiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, transport: str
) -> None:
    for var in [v for v in os.environ if v.startswith("OTEL_")]:
        monkeypatch.delenv(var)
    for var, value in {"OTEL_TRACES_EXPORTER": "jaeger", "OTEL_BSP_SCHEDULE_DELAY": "100"}.items():
        monkeypatch.setenv(var, value)
    for var, value in receiver.env(transport).items():
        monkeypatch.setenv(var, value)
    keys = write_keys_file(tmp_path / "keys.yaml", ["acme"])
    with (
        Prometheus(tmp_path, scrape_configs=[]) as prometheus,
        Gateway(tmp_path / "gateway", prometheus.url, tmp_path / "keys.yaml") as gateway,
    ):
        r = gateway.post(
            "/api/v1/query",
            keys["acme:read"],
            {"query": "up"},
            traceparent=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
        )
        assert r.status_code == 200, r.text
        (server,) = receiver.wait_for(lambda s: s.trace_id == CALLER_TRACE and s.kind == "server")
        (client, *_) = receiver.wait_for(lambda s: s.parent_span_id == server.span_id and s.kind == "client")
    assert server.parent_span_id == CALLER_SPAN
    assert (server.service, server.name) == ("tenantpulse-gateway", "POST /api/v1/query")
    assert server.attributes["http.status_code"] == 200
    assert (client.trace_id, client.service) == (CALLER_TRACE, "tenantpulse-gateway")
    assert client.attributes["db.system.name"] == "prometheus"
    assert client.attributes["db.query.text"] == 'up{tenant="acme"}'  # what the tenant was kept to
    assert set(receiver.batches) == {transport}


def test_generate_run_is_one_span_sent_to_the_collector_before_exit(
    receiver: JaegerReceiver, tmp_path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tenantpulse.cli", "generate", "dashboards"]
        + ["--spec", "examples/dashboards.yaml", "--out", str(tmp_path)],
        env=clean_env(OTEL_TRACES_EXPORTER="jaeger", **receiver.env("collector")),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    (span,) = receiver.spans  # no waiting: the command flushed before it returned
    assert (span.name, span.service) == ("tenantpulse generate dashboards", "tenantpulse-generate")
    assert span.attributes["tenantpulse.exit_code"] == 0
    assert receiver.batches == {"collector": 1}
