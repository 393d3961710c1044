"""A real Alertmanager (Debian ``prometheus-alertmanager``) on free loopback ports, clustering off."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import requests

from tenantpulse.kernel.processes import ChildProcess
from tests.support.ports import free_port
from tests.support.prometheus import require


class Alertmanager:
    """Start with a generated ``alertmanager.yml``; read its alerts over the v2 API."""

    def __init__(self, workdir: Path, config_file: Path) -> None:
        self.workdir = workdir
        self.config_file = config_file
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.target}"
        self.log_path = workdir / "alertmanager.log"
        self.child: ChildProcess | None = None

    def start(self) -> Alertmanager:
        command = [
            require("prometheus-alertmanager"),
            f"--config.file={self.config_file}",
            f"--storage.path={self.workdir / 'am-data'}",
            f"--web.listen-address={self.target}",
            "--cluster.listen-address=",
        ]
        self.child = ChildProcess("alertmanager", command, self.log_path)
        self.child.start(f"{self.url}/-/ready", timeout=30)
        return self

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()

    def __enter__(self) -> Alertmanager:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def alerts(self) -> list[dict[str, Any]]:
        r = requests.get(f"{self.url}/api/v2/alerts", timeout=5)
        r.raise_for_status()
        return r.json()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def routes_to(config: Path, *labels: str) -> set[str]:
    """Receivers the real amtool picks for one label set."""
    out = subprocess.run(
        ["amtool", "config", "routes", "test", f"--config.file={config}", *labels],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.strip().split(","))
