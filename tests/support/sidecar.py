"""The real anomaly sidecar (``python -m tenantpulse.cli sidecar``) as a subprocess on a free loopback port.

Usage::

    from tests.support.sidecar import Sidecar

    with Sidecar(tmp_path, prometheus.url, extra_args=["--indicators", "error_rate", "--warmup", "10"]) as sc:
        sc.url, sc.target            # base URL; "127.0.0.1:PORT" for a Prometheus static_config
        sc.scrape_config("sidecar")  # a ready scrape job for tests.support.prometheus.Prometheus
        sc.metrics()                 # /metrics text
        sc.get("/analytics/ml/models", key="t1")   # keys: per tenant "t1" (read+write), "admin"
        sc.restart()                 # SIGTERM (saves state) and start again on the same port

Prometheus must know the sidecar's port before either starts: pick it with ``free_port()`` and pass
``port=``.

Defaults suit tests: 1s cycles, 10s rate window, 60s backfill, state file in the workdir.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import requests
import yaml

from tenantpulse.kernel.processes import ChildProcess, python_env, tenantpulse_command
from tests.support.ports import free_port
from tests.support.shared import REPO


class Sidecar:
    """Start/stop the sidecar process; API keys per tenant plus an admin key."""

    def __init__(
        self,
        workdir: Path,
        prometheus_url: str,
        tenants: Sequence[str] = ("t1", "t2", "t3"),
        extra_args: Sequence[str] = (),
        state: bool = True,
        port: int | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.target}"
        self.keys = {t: f"sidecar-test-{t}" for t in tenants} | {"admin": "sidecar-test-admin"}
        self.keys_file = self.workdir / "sidecar-keys.yaml"
        entries: list[dict[str, Any]] = [
            {"key": self.keys[t], "tenant": t, "scopes": ["read", "write"], "id": t} for t in tenants
        ]
        entries.append({"key": self.keys["admin"], "tenant": "*", "scopes": ["admin"], "id": "admin"})
        self.keys_file.write_text(yaml.safe_dump({"keys": entries}))
        self.state_file = self.workdir / "sidecar-state.bin"
        self.log_path = self.workdir / "sidecar.log"
        self.child = ChildProcess(
            "sidecar",
            tenantpulse_command(
                "sidecar",
                "--prometheus-url", prometheus_url,
                "--host", "127.0.0.1", "--port", str(self.port),
                "--api-keys", str(self.keys_file),
                "--interval", "1s", "--rate-window", "10s", "--backfill", "60s",
                "--query-timeout", "2s", "--log-level", "info",
                *(["--state-file", str(self.state_file)] if state else []),
                *extra_args,
            ),
            self.log_path,
            env=python_env(),
            cwd=REPO,
        )  # fmt: skip

    @property
    def command(self) -> list[str]:
        return self.child.command

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.child.proc

    def start(self, wait_ready: bool = True) -> Sidecar:
        self.child.start(f"{self.url}{'/readyz' if wait_ready else '/healthz'}", timeout=40)
        return self

    def stop(self) -> None:
        """SIGTERM: the sidecar saves its state on the way out."""
        self.child.stop(grace=20)

    def restart(self, wait_ready: bool = True) -> Sidecar:
        self.stop()
        return self.start(wait_ready)

    def __enter__(self) -> Sidecar:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def get(self, path: str, key: str | None = None, **params: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return requests.get(f"{self.url}{path}", headers=headers, params=params, timeout=30)

    def post(self, path: str, body: Any, key: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return requests.post(f"{self.url}{path}", json=body, headers=headers, timeout=60)

    def metrics(self) -> str:
        r = requests.get(f"{self.url}/metrics", timeout=10)
        r.raise_for_status()
        return r.text

    def scrape_config(self, job: str = "sidecar") -> dict[str, Any]:
        return {"job_name": job, "static_configs": [{"targets": [self.target]}]}


Answer = Callable[[str, dict[str, str], dict[str, str]], tuple[int, Any]]


class FakePrometheusApi:
    """A local HTTP server with the Prometheus query API's shape, for unit tests of the client side.

    ``answer(path, form, headers) -> (status, json_or_bytes)`` decides each reply; every request is
    recorded in ``requests`` as ``(path, form, headers)`` (header names lower-cased).
    """

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                api.requests.append((self.path, form, headers))
                status, body = api.answer(self.path, form, headers)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakePrometheusApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def vector_answer(rows: Sequence[tuple[dict[str, str], float | str]], t: float) -> dict[str, Any]:
    """An instant-query success body."""
    result = [{"metric": m, "value": [t, str(v)]} for m, v in rows]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def matrix_answer(rows: Sequence[tuple[dict[str, str], Sequence[tuple[float, float]]]]) -> dict[str, Any]:
    """A range-query success body."""
    result = [{"metric": m, "values": [[t, str(v)] for t, v in points]} for m, points in rows]
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}
