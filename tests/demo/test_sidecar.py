"""``tenantpulse demo`` with the sidecar component added: the demo Prometheus scrapes the sidecar's scores,
and the sidecar saves its state when the demo stops."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tenantpulse.conventions import catalog as c
from tests.support.ports import free_port, wait_until
from tests.support.prometheus import require

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RUN_DEMO = """
import sys
from tenantpulse import cli
sys.exit(cli.main(["demo", *sys.argv[1:]]))
"""


def test_demo_runs_the_sidecar_against_its_prometheus(tmp_path: Path) -> None:
    require("prometheus")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_DEMO, "--duration", "15", "--workdir", str(tmp_path), "--scrape-interval", "1s",
         "--exporter-port", "0", "--prometheus-port", str(port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:

        def scraped() -> bool:
            r = requests.get(
                f"http://127.0.0.1:{port}/api/v1/query", params={"query": c.SIDECAR_SERIES.name}, timeout=2
            ).json()["data"]["result"]
            return bool(r) and float(r[0]["value"][1]) >= 3 * 4  # 3 tenants x 4 watched indicators

        wait_until(scraped, timeout=60, interval=1, what="the sidecar's series count in the demo Prometheus")
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "anomaly sidecar" in out and "injects an error spike into acme" in out
    assert (tmp_path / "sidecar.state").stat().st_size > 0  # saved on the way out
    assert "Traceback" not in (tmp_path / "logs" / "sidecar.log").read_text()
