"""The exporter and the sidecar expose their own ``process_*`` metrics (CPU, memory, fds, start time).

Real processes: both /metrics bodies parse with prometheus_client (the exporter's in both formats),
promtool accepts them, and a real Prometheus stores the process metrics of both (it asks the exporter for
OpenMetrics first). A per-tenant scrape of the exporter carries no process metrics, like host metrics.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
import requests
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.support.exporter import Exporter
from tests.support.ports import free_port, wait_until
from tests.support.prometheus import Prometheus, require
from tests.support.sidecar import Sidecar

pytestmark = pytest.mark.integration

OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


def process_values(families: Iterable[Metric]) -> dict[str, float]:
    return {s.name: s.value for f in families for s in f.samples if s.name.startswith("process_")}


def check_process(values: dict[str, float], started: float) -> None:
    assert values["process_resident_memory_bytes"] > 0
    assert values["process_open_fds"] >= 3 and values["process_max_fds"] >= values["process_open_fds"]
    assert values["process_cpu_seconds_total"] > 0
    assert started - 2 <= values["process_start_time_seconds"] <= time.time()


def test_exporter_and_sidecar_expose_their_process_metrics(tmp_path: Path) -> None:
    promtool = require("promtool")
    prom_port, sidecar_port = free_port(), free_port()
    started = time.time()
    exporter = Exporter(tmp_path / "exporter")
    sidecar = Sidecar(tmp_path / "sidecar", f"http://127.0.0.1:{prom_port}", port=sidecar_port)
    prom = Prometheus(
        tmp_path,
        [exporter.scrape_config("exporter"), sidecar.scrape_config("sidecar")],
        scrape_interval="250ms",
    )
    prom.port, prom.url = prom_port, f"http://127.0.0.1:{prom_port}"
    try:
        exporter.start()
        sidecar.start(wait_ready=False)  # /metrics is served from the start, Prometheus or not
        exporter.post({"tenant_id": "t1", "event_type": "song_play"}, key="t1")
        bodies = {"exporter": exporter.metrics(), "sidecar": sidecar.metrics()}
        for name, text in bodies.items():
            check_process(process_values(parse_text(text)), started)
            result = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True)
            assert result.returncode == 0, f"{name}: {result.stdout!r} {result.stderr!r}"
            assert not result.stdout.strip() and not result.stderr.strip(), f"{name}: {result!r}"
        om = requests.get(f"{exporter.url}/metrics", headers=OPENMETRICS, timeout=10)
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.text.endswith("\n# EOF\n") and om.text.count("# EOF") == 1
        check_process(process_values(parse_openmetrics(om.text)), started)  # strict: nothing after EOF
        assert "process_" not in exporter.metrics(tenant="t1")

        prom.start()  # Prometheus asks the exporter for OpenMetrics first, the sidecar answers text
        wait_until(prom.targets_up, timeout=30, what="both targets up")
        for job in ("exporter", "sidecar"):
            wait_until(
                lambda j=job: (prom.value("process_resident_memory_bytes", job=j) or 0) > 0,
                timeout=30,
                what=f"{job}'s process metrics in Prometheus",
            )
            assert (prom.value("process_start_time_seconds", job=job) or 0) >= started - 2
    finally:
        prom.stop()
        sidecar.stop()
        exporter.stop()
