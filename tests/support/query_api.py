"""What the real Prometheus-API engines of the tests (``prometheus``, ``victoria-metrics``) share: one
child process on a loopback port, instant queries, target health."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Self

import requests

from tenantpulse.kernel.processes import ChildProcess


class QueryApiServer:
    """Subclasses set ``url`` and call ``_start``; queries go to ``url + "/api/v1/query"``."""

    url: str
    child: ChildProcess | None = None

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.child.proc if self.child else None

    def _start(self, name: str, command: list[str], log: Path, ready_path: str) -> None:
        self.child = ChildProcess(name, command, log)
        self.child.start(f"{self.url}{ready_path}", timeout=30)

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()

    def start(self) -> Self:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def query(self, expr: str, **params: str) -> list[dict[str, Any]]:
        """Instant query; raises with the engine's own message if the expression is invalid."""
        body = requests.post(f"{self.url}/api/v1/query", data={"query": expr, **params}, timeout=10).json()
        if body.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {body.get('error')}")
        return body["data"]["result"]

    def value(self, expr: str, **labels: str) -> float | None:
        """The value of the one result whose labels include ``labels``, or None."""
        for row in self.query(expr):
            if all(row["metric"].get(k) == v for k, v in labels.items()):
                return float(row["value"][1])
        return None

    def targets_up(self) -> bool:
        active = requests.get(f"{self.url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)
