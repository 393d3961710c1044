"""The real Prometheus scrapes the collector's render() in both formats and stores the ingested values.

A bare stdlib HTTP server serves the body (the HTTP API is tested elsewhere): this pins down that
Prometheus's own parsers accept our text and OpenMetrics output, exemplars included.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tenantpulse.conventions import catalog as c
from tenantpulse.conventions.exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE
from tenantpulse.exporters.collector import MetricsCollector
from tenantpulse.exporters.events import AppEvent, BusinessFigures
from tests.support.ports import free_port, wait_until
from tests.support.prometheus import Prometheus

pytestmark = pytest.mark.integration


@pytest.fixture
def served() -> Iterator[tuple[MetricsCollector, str]]:
    collector = MetricsCollector()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            openmetrics = self.path == "/om"
            body = collector.render(openmetrics=openmetrics)
            self.send_response(200)
            self.send_header("Content-Type", OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield collector, f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_prometheus_stores_both_formats(served: tuple[MetricsCollector, str], tmp_path: Path) -> None:
    collector, target = served
    collector.ingest(
        [AppEvent("t1", f"u{i}", "song_play", {"duration_ms": 40 * i}) for i in range(7)]
        + [AppEvent("acme.eu", "u1", "error")],
        [BusinessFigures("t1", revenue=12.5, active_users=30, conversion_rate=0.2)],
    )
    collector.observe_request("t1", 0.002, {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"})
    collector.register_kpi("t1", "queue_depth", labels=("region",))
    collector.set_kpi("t1", "queue_depth", 4, {"region": 'eu "west"'})
    jobs = [
        {"job_name": name, "metrics_path": path, "static_configs": [{"targets": [target]}]}
        for name, path in (("om", "/om"), ("text", "/text"))
    ]
    with Prometheus(tmp_path, jobs) as prom:
        wait_until(prom.targets_up, timeout=30, what="both targets up")
        for job in ("om", "text"):
            events = c.EVENTS.selector(tenant="t1", event_type="song_play")
            wait_until(lambda j=job, e=events: prom.value(e, job=j) == 7, timeout=30, what=f"{job} events")
            assert prom.value(c.EVENTS.selector(tenant="acme.eu"), job=job) == 1
            assert prom.value(c.REVENUE.selector(tenant="t1"), job=job) == 12.5
            assert prom.value(c.CONVERSION.selector(tenant="t1"), job=job) == 0.2
            assert prom.value(c.UNIQUE_USERS.selector(tenant="t1", window="1h"), job=job) == 7
            kpi = c.CUSTOM_KPI.selector(tenant="t1", kpi="queue_depth")
            assert prom.value(kpi, job=job, region='eu "west"') == 4
            buckets = c.EVENT_DURATION.selector("bucket", tenant="t1")
            p50 = prom.value(f"histogram_quantile(0.5, sum by (job, le) ({buckets}))", job=job)
            assert 0.1 <= p50 <= 0.25  # 7 durations 0..240 ms: the median (120 ms) is in (0.1, 0.25]

        collector.ingest([AppEvent("t1", None, "song_play")] * 5, [])
        for job in ("om", "text"):
            events = c.EVENTS.selector(tenant="t1", event_type="song_play")
            wait_until(lambda j=job, e=events: prom.value(e, job=j) == 12, timeout=30, what=f"{job} update")
        assert prom.targets_up()
