"""The real ``tenantpulse sidecar`` against a real Prometheus, traced through OTEL_* env to a loopback receiver.

A recording proxy sits between the sidecar and Prometheus, so the test sees the ``traceparent``
header each query carried; the answers are Prometheus's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tenantpulse.conventions import indicators
from tenantpulse.kernel.durations import format_duration
from tests.support.otlp import OtlpReceiver
from tests.support.ports import free_port
from tests.support.prometheus import Prometheus
from tests.support.recording_proxy import RecordingProxy

pytestmark = pytest.mark.integration

RATE_WINDOW = "5m"


@pytest.fixture(scope="module")
def traced_cycle(tmp_path_factory):
    """(cycle span, its client child spans, requests seen by the proxy, (backfill span, its children))."""
    workdir = tmp_path_factory.mktemp("otel-sidecar")
    with (
        OtlpReceiver() as receiver,
        Prometheus(workdir, scrape_configs=[]) as prometheus,
        RecordingProxy(prometheus.url) as proxy,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        args = [
            *("--prometheus-url", proxy.url, "--port", str(free_port())),
            *("--interval", "1s", "--backfill", "10s", "--rate-window", RATE_WINDOW),
            *("--forecast-every", "1h"),
        ]
        with open(workdir / "sidecar.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tenantpulse.cli", "sidecar", *args],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=Path(__file__).resolve().parents[2],
            )
            try:
                wanted = len(indicators.WATCHED)
                cycle = receiver.wait_for(lambda s: s.name == "sidecar cycle", what="a cycle span")[0]
                children = receiver.wait_for(
                    lambda s: s.parent_span_id == cycle.span_id, count=wanted, what="the cycle's query spans"
                )
                backfill = receiver.wait_for(
                    lambda s: s.name == "sidecar backfill", what="the backfill span"
                )[0]
                ranges = receiver.find(lambda s: s.parent_span_id == backfill.span_id)
                yield cycle, children, list(proxy.seen), (backfill, ranges)
            finally:
                proc.terminate()
                proc.wait(10)


def test_cycle_span_has_one_client_span_per_prometheus_query(traced_cycle) -> None:
    cycle, children, _, _ = traced_cycle
    assert cycle.service == "tenantpulse-sidecar"
    assert cycle.parent_span_id == ""  # a cycle is the root of its own trace
    assert cycle.attributes["tenantpulse.errors"] == 0
    expected = {ind.promql(window=format_duration(300)) for ind in map(indicators.get, indicators.WATCHED)}
    assert {s.attributes["db.query.text"] for s in children} == expected
    for child in children:
        assert child.kind == "client"
        assert child.name == "POST /api/v1/query"
        assert child.trace_id == cycle.trace_id
        assert child.attributes["db.system.name"] == "prometheus"


def test_prometheus_received_traceparent_of_each_query_span(traced_cycle) -> None:
    cycle, children, seen, _ = traced_cycle
    sent = {}
    for r in seen:
        if r.path == "/api/v1/query" and "traceparent" in r.headers:
            version, trace_id, parent_id, flags = r.headers["traceparent"].split("-")
            sent[parent_id] = (version, trace_id, int(flags, 16) & 1)  # W3C: bit 0 of the flags = sampled
    for child in children:
        assert sent[child.span_id] == ("00", cycle.trace_id, 1)


def test_backfill_is_one_trace_of_range_queries(traced_cycle) -> None:
    cycle, _, _, (backfill, ranges) = traced_cycle
    assert backfill.trace_id != cycle.trace_id and backfill.parent_span_id == ""
    # Range queries, and the instant queries that read the newest --latency-offset of each (sidecar.md).
    assert sum(s.name == "POST /api/v1/query_range" for s in ranges) >= len(indicators.WATCHED)
    assert {s.name for s in ranges} == {"POST /api/v1/query_range", "POST /api/v1/query"}
    assert all(s.trace_id == backfill.trace_id for s in ranges)
