"""``tenantpulse demo`` runs the query gateway over its Prometheus: the printed example reads one tenant's
series with that tenant's key, and another tenant's matcher is refused."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
import yaml

from tenantpulse.conventions import catalog as c
from tests.demo.test_sidecar import REPO, RUN_DEMO
from tests.support.ports import free_port, wait_until
from tests.support.prometheus import require

pytestmark = pytest.mark.integration


def test_demo_gateway_keeps_each_tenant_to_its_series(tmp_path: Path) -> None:
    require("prometheus")
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_DEMO, "--duration", "40", "--workdir", str(tmp_path), "--scrape-interval", "1s",
         "--exporter-port", "0", "--prometheus-port", str(free_port())],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        shown = wait_until(
            lambda: next((m for ln in lines if (m := re.search(r"query gateway\s+(http://\S+)/api/v1/query", ln))), None),
            timeout=60,
            what="the gateway's URL in the demo's output",
        )  # fmt: skip
        url = shown.group(1)
        keys = {
            k["id"]: k["key"] for k in yaml.safe_load((tmp_path / "exporter-keys.yaml").read_text())["keys"]
        }
        assert any(f"-u :{keys['acme']}" in ln for ln in lines)  # the printed example uses acme's key

        def tenants_seen(key: str, query: str) -> set[str]:
            r = requests.get(f"{url}/api/v1/query", params={"query": query}, auth=("", key), timeout=5)
            r.raise_for_status()
            return {s["metric"].get(c.TENANT, "") for s in r.json()["data"]["result"]}

        everyone = f"count by ({c.TENANT}) ({c.EVENTS.name})"
        wait_until(lambda: len(tenants_seen(keys["admin"], everyone)) == 3, timeout=60, what="3 tenants")
        assert tenants_seen(keys["acme"], everyone) == {"acme"}
        refused = requests.get(
            f"{url}/api/v1/query", params={"query": c.EVENTS.selector(tenant="globex")}, auth=("", keys["acme"]), timeout=5
        )  # fmt: skip
        assert refused.status_code == 403 and refused.json()["status"] == "error"
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    assert proc.returncode == 0, "".join(lines)
    assert "Traceback" not in (tmp_path / "logs" / "gateway.log").read_text()
