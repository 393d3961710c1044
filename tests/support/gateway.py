"""The real gateway (``python -m tenantpulse.cli gateway``) as a subprocess on a free loopback port.

Usage::

    with Gateway(tmp_path, backend=prom.url, keys_file=exporter.keys_file) as gw:
        r = gw.query(exporter.keys["t1:read"], "sum(tenantpulse_events_total)")  # POST, as Grafana
        r = gw.get("/api/v1/labels", exporter.keys["t1:read"], basic=True)      # basic auth
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from tenantpulse.kernel.processes import ChildProcess, python_env, tenantpulse_command
from tests.support.ports import free_port
from tests.support.shared import REPO


def auth_headers(key: str | None, basic: bool = False) -> dict[str, str]:
    """``Authorization`` as Grafana's datasource sends it: bearer, or basic auth with the key as password."""
    if key is None:
        return {}
    if basic:
        return {"Authorization": "Basic " + base64.b64encode(f"grafana:{key}".encode()).decode()}
    return {"Authorization": f"Bearer {key}"}


class Gateway:
    def __init__(self, workdir: Path, backend: str, keys_file: Path, extra_args: Sequence[str] = ()) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.session = requests.Session()
        self.child = ChildProcess(
            "gateway",
            tenantpulse_command(
                "gateway", "--backend", backend, "--keys", str(keys_file), "--port", str(self.port),
                *extra_args,
            ),
            self.workdir / "gateway.log",
            env=python_env(),
            cwd=REPO,
        )  # fmt: skip

    def start(self) -> Gateway:
        self.child.start(f"{self.url}/healthz", timeout=30)
        return self

    def stop(self) -> None:
        self.child.stop()
        self.session.close()

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def get(self, path: str, key: str | None, basic: bool = False, **params: Any) -> requests.Response:
        return self.session.get(self.url + path, params=params, headers=auth_headers(key, basic), timeout=30)

    def post(
        self, path: str, key: str | None, data: Any, basic: bool = False, **headers: str
    ) -> requests.Response:
        """A form-encoded POST, as Grafana's Prometheus datasource sends queries."""
        return self.session.post(
            self.url + path, data=data, headers={**auth_headers(key, basic), **headers}, timeout=30
        )

    def query(self, key: str | None, expr: str, basic: bool = False, **params: Any) -> requests.Response:
        return self.post("/api/v1/query", key, {"query": expr, **params}, basic=basic)
