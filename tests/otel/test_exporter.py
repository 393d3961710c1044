"""The real ``tenantpulse exporter`` process, traced through OTEL_* env to a loopback OTLP receiver.

One ingest request with a caller's ``traceparent``: the exported server span continues that trace,
carries tenant / batch size / result, the OpenMetrics scrape shows the same trace id as an exemplar,
and the exporter's JSON log lines for that request carry it too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from tenantpulse.conventions.catalog import INGEST_REQUEST_DURATION
from tests.support.otlp import OtlpReceiver
from tests.support.ports import free_port, wait_until

pytestmark = pytest.mark.integration

KEY = "otel-test-write-key"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def traced_exporter(tmp_path_factory):
    """(base url, receiver, stderr path) of an exporter exporting spans to the receiver."""
    workdir = tmp_path_factory.mktemp("otel-exporter")
    keys = workdir / "keys.yaml"
    keys.write_text(yaml.safe_dump({"keys": [{"key": KEY, "tenant": "acme", "scopes": ["write", "read"]}]}))
    port = free_port()
    with OtlpReceiver() as receiver:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env |= {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms: export promptly so the test need not wait
        }
        stderr_path = workdir / "exporter.log"
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tenantpulse.cli",
                    "exporter",
                    "--port",
                    str(port),
                    "--api-keys",
                    str(keys),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd=Path(__file__).resolve().parents[2],
            )
            url = f"http://127.0.0.1:{port}"
            try:
                wait_until(lambda: requests.get(f"{url}/readyz", timeout=1).ok, what="exporter ready")
                yield url, receiver, stderr_path
            finally:
                proc.terminate()
                proc.wait(10)


@pytest.fixture(scope="module")
def ingest(traced_exporter):
    """POST one batch of two events under the caller's trace; returns the exported server span."""
    url, receiver, _ = traced_exporter
    body = {
        "events": [
            {
                "tenant_id": "acme",
                "user_id": "u-1",
                "event_type": "song_play",
                "metadata": {"duration_ms": 120},
            },
            {
                "tenant_id": "acme",
                "user_id": "u-2",
                "event_type": "song_play",
                "metadata": {"duration_ms": 80},
            },
        ]
    }
    r = requests.post(
        f"{url}/analytics/metrics",
        json=body,
        headers={"Authorization": f"Bearer {KEY}", "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    (server,) = receiver.wait_for(
        lambda s: s.trace_id == CALLER_TRACE and s.kind == "server", what="ingest span"
    )
    return server, r.json()


def test_ingest_span_continues_the_callers_trace(ingest) -> None:
    server, _ = ingest
    assert server.parent_span_id == CALLER_SPAN
    assert server.service == "tenantpulse-exporter"
    assert server.name == "POST /analytics/metrics"
    assert server.attributes["tenantpulse.tenant"] == "acme"
    assert server.attributes["tenantpulse.batch_size"] == 2
    assert server.attributes["tenantpulse.result"] == "accepted"
    assert _status_code(server.attributes) == 200
    assert server.status != "error"


def test_rejected_request_span_says_why(traced_exporter) -> None:
    url, receiver, _ = traced_exporter
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    r = requests.post(
        f"{url}/analytics/metrics",
        json={"events": [{"tenant_id": "other", "event_type": "song_play"}]},
        headers={"Authorization": f"Bearer {KEY}", "traceparent": f"00-{trace_id}-b7ad6b7169203331-01"},
        timeout=10,
    )
    assert r.status_code == 403
    (server,) = receiver.wait_for(lambda s: s.trace_id == trace_id and s.kind == "server")
    assert server.attributes["tenantpulse.result"] == "forbidden"
    assert server.attributes["tenantpulse.tenant"] == "acme"
    assert _status_code(server.attributes) == 403


def _status_code(attributes: dict) -> int:
    """The HTTP status under the stable or the older semantic-convention name (OTEL_SEMCONV_STABILITY_OPT_IN)."""
    return attributes.get("http.response.status_code", attributes.get("http.status_code"))


def test_openmetrics_exemplar_points_at_the_exported_trace(traced_exporter, ingest) -> None:
    url, _, _ = traced_exporter
    server, _ = ingest
    r = requests.get(f"{url}/metrics", headers={"Accept": "application/openmetrics-text"}, timeout=10)
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    bucket = INGEST_REQUEST_DURATION.sample("bucket")
    exemplar_lines = [
        line
        for line in r.text.splitlines()
        if line.startswith(bucket) and 'tenant="acme"' in line and " # {" in line
    ]
    wanted = (f'trace_id="{server.trace_id}"', f'span_id="{server.span_id}"')  # the server span itself
    assert any(all(w in line for w in wanted) for line in exemplar_lines), exemplar_lines
    assert server.trace_id == CALLER_TRACE


def test_log_lines_of_the_request_carry_its_trace_id(traced_exporter, ingest) -> None:
    _, _, stderr_path = traced_exporter
    _, reply = ingest
    lines = [json.loads(line) for line in stderr_path.read_text().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == reply["request_id"]]
    assert mine, f"no log line with request_id {reply['request_id']}"
    for line in mine:
        assert line["trace_id"] == CALLER_TRACE
        assert line["tenant"] == "acme"
