"""A real VictoriaMetrics (the Debian ``victoria-metrics`` binary, single node) on a free loopback port.

Usage::

    with VictoriaMetrics(workdir, [exporter.scrape_config("tenantpulse")]) as vm:
        vm.url        # the Prometheus query API is at vm.url + "/api/v1/..."
        name = vm.snapshot()                       # an instant snapshot of the storage
        copy = VictoriaMetrics.from_snapshot(vm, name, other_workdir).start()   # a second node on a copy

Skips the test with a message when the binary is not installed (``apt-get install victoria-metrics``).
Caches are off and the latency offset is one second, so a query sees what was scraped a moment ago.
"""

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


def require_victoriametrics() -> str:
    path = shutil.which("victoria-metrics")
    if path is None:
        pytest.skip(
            "victoria-metrics not installed (apt-get install victoria-metrics; `make system` does it)"
        )
    return path


class VictoriaMetrics(QueryApiServer):
    def __init__(
        self, workdir: Path, scrape_configs: Sequence[dict[str, Any]] = (), scrape_interval: str = "1s"
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = self.workdir / "data"
        self.config_path = self.workdir / "scrape.yml"
        config = {"global": {"scrape_interval": scrape_interval}, "scrape_configs": list(scrape_configs)}
        self.config_path.write_text(yaml.safe_dump(config))

    def start(self) -> VictoriaMetrics:
        command = [
            require_victoriametrics(),
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.data}",
            f"-promscrape.config={self.config_path}",
            "-search.latencyOffset=1s",
            "-search.disableCache",
            "-retentionPeriod=1y",
            "-loggerLevel=WARN",
        ]
        self._start("victoria-metrics", command, self.workdir / "victoria-metrics.log", "/health")
        return self

    def snapshot(self) -> str:
        """Flush what was scraped and snapshot the storage; returns the snapshot's name."""
        body = requests.get(f"{self.url}/snapshot/create", timeout=30).json()
        assert body.get("status") == "ok", body
        return str(body["snapshot"])

    @classmethod
    def from_snapshot(cls, source: VictoriaMetrics, name: str, workdir: Path) -> VictoriaMetrics:
        """A node (scraping nothing) on a copy of ``source``'s snapshot: the same samples, its own storage."""
        node = cls(workdir)
        # A snapshot is links into the source's storage; copying follows them into files of its own.
        shutil.copytree(source.data / "snapshots" / name, node.data, symlinks=False)
        return node
