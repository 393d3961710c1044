"""``tenantpulse demo`` serves the live dashboards and prints their URL first: a tenant's key sees its own
tenant's data in them, and an all-tenant key can pick any of the demo's tenants."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
import yaml

from tests.demo.test_sidecar import REPO, RUN_DEMO
from tests.support.ports import free_port, wait_until
from tests.support.prometheus import require

pytestmark = pytest.mark.integration


def test_demo_prints_the_live_dashboards_first_and_serves_them_per_tenant(tmp_path: Path) -> None:
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
        wait_until(
            lambda: any("tenantpulse demo is running" in ln for ln in lines), timeout=90, what="the demo"
        )
        wait_until(lambda: len(lines) > lines.index(next(ln for ln in lines if "is running" in ln)) + 1)
        first = lines[[i for i, ln in enumerate(lines) if "is running" in ln][0] + 1]
        shown = re.search(r"live dashboards\s+(http://\S+)/ ", first)
        assert shown, first
        url = shown.group(1)
        keys = {
            k["id"]: k["key"] for k in yaml.safe_load((tmp_path / "exporter-keys.yaml").read_text())["keys"]
        }
        listed = requests.get(f"{url}/api/dashboards", auth=("", keys["acme"]), timeout=10).json()
        uids = {d["uid"] for d in listed}
        assert "tp-realtime-all" in uids and len(uids) == 2

        def tenant(key: str, **params: str) -> requests.Response:
            return requests.get(
                f"{url}/api/dashboards/tp-realtime-all/data", params={"range": "5m", **params}, auth=("", key), timeout=30
            )  # fmt: skip

        def options(key: str) -> list[str]:
            body = tenant(key).json()
            return next(v for v in body["variables"] if v["name"] == "tenant")["options"]

        wait_until(lambda: len(options(keys["admin"])) == 3, timeout=60, what="3 tenants for the admin key")
        assert options(keys["acme"]) == ["acme"]
        assert tenant(keys["acme"], **{"var-tenant": "globex"}).status_code == 403

        def with_data() -> int:
            panels = tenant(keys["acme"]).json()["panels"].values()
            return sum(1 for p in panels if any(v is not None for s in p.get("series", []) for v in s["v"]))

        wait_until(lambda: with_data() > 10, timeout=30, what="acme's panels with data")
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    assert proc.returncode == 0, "".join(lines)
    assert "Traceback" not in (tmp_path / "logs" / "dashboards.log").read_text()
