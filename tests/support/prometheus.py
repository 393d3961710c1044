"""A real Prometheus (the Debian ``prometheus`` binary) on a free loopback port, for integration tests."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.support.ports import free_port
from tests.support.query_api import QueryApiServer


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} not installed (apt-get install prometheus prometheus-alertmanager)")
    return path


class Prometheus(QueryApiServer):
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
        self._start("prometheus", command, self.workdir / "prometheus.log", "/-/ready")
        return self

    def reload(self) -> None:
        requests.post(f"{self.url}/-/reload", timeout=10).raise_for_status()
