"""A real Prometheus (the Debian ``prometheus`` binary) on a free loopback port, for integration tests."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tenantpulse.kernel.processes import ChildProcess
from tests.support.ports import free_port


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} not installed (apt-get install prometheus prometheus-alertmanager)")
    return path


class Prometheus:
    """Start with scrape targets (and optional rule files / Alertmanager); query over the HTTP API."""

    def __init__(
        self,
        workdir: Path,
        scrape_configs: Sequence[dict[str, Any]],
        rule_files: Sequence[str] = (),
        alertmanagers: Sequence[str] = (),
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "prometheus.yml"
        config: dict[str, Any] = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
            "scrape_configs": list(scrape_configs),
            "rule_files": list(rule_files),
        }
        if alertmanagers:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
        self.config_path.write_text(yaml.safe_dump(config))
        self.child: ChildProcess | None = None

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.child.proc if self.child else None

    def start(self) -> Prometheus:
        command = [
            require("prometheus"),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--web.enable-admin-api",
            *self.extra_args,
        ]
        self.child = ChildProcess("prometheus", command, self.workdir / "prometheus.log")
        self.child.start(f"{self.url}/-/ready", timeout=30)
        return self

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; raises with Prometheus's own message if the expression is invalid."""
        r = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = r.json()
        if body.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {body.get('error')}")
        return body["data"]["result"]

    def value(self, expr: str, **labels: str) -> float | None:
        """The value of the one result whose labels include ``labels``, or None."""
        for row in self.query(expr):
            if all(row["metric"].get(k) == v for k, v in labels.items()):
                return float(row["value"][1])
        return None

    def reload(self) -> None:
        requests.post(f"{self.url}/-/reload", timeout=10).raise_for_status()

    def targets_up(self) -> bool:
        r = requests.get(f"{self.url}/api/v1/targets", timeout=5).json()
        active = r["data"]["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)
