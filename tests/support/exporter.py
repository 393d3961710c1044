"""The real exporter (``python -m tenantpulse.cli exporter``) as a subprocess on a free loopback port.

Usage::

    from tests.support.exporter import Exporter, exporter  # noqa: F401  (``exporter`` is a fixture)

    def test_something(exporter):  # tenants t1, t2, t3; a fresh process per test
        exporter.post({"tenant_id": "t1", "user_id": "u1", "event_type": "song_play"}, key="t1")
        r = requests.get(f"{exporter.url}/analytics/metrics/t1", headers=exporter.auth("t1"))

    with Exporter(tmp_path, tenants=("a", "b"), extra_args=["--rate-limit", "100"]) as ex:
        ex.keys["a"]        # write+read key bound to tenant a
        ex.keys["a:read"]   # read-only key for a
        ex.keys["a:write"]  # write-only key for a
        ex.keys["admin"]    # tenant "*" admin key
        ex.target           # "127.0.0.1:PORT", for a Prometheus static_config
        ex.scrape_config("tp", tenant="a")  # a ready scrape job for tests.support.prometheus.Prometheus
        ex.log_lines()      # the exporter's JSON log lines so far, parsed

Keys are plain in the keys file (development form); ``ex.keys_file`` is its path.

Several replicas sharing one Redis, the same keys and pseudonym key, behind a round-robin client::

    with Replicas(tmp_path, 3, redis_url=server.url, extra_args=["--rate-limit", "1e9"]) as rs:
        rs.post({"events": [...]}, key="t1")   # to t1's next replica in turn; returns the response
        rs.metrics()                             # every replica's /metrics, in order

In-process (no subprocess; for unit tests of routers)::

    client, keys = app_client(tmp_path, rate_limit=100.0)   # fastapi TestClient, lifespan started
    client.post("/analytics/metrics", json=..., headers=bearer(keys["t1"]))
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tenantpulse.kernel.processes import ChildProcess, python_env, tenantpulse_command
from tests.support.ports import free_port
from tests.support.shared import REPO

DEFAULT_TENANTS = ("t1", "t2", "t3")


def write_keys_file(
    path: Path, tenants: Sequence[str], reuse: dict[str, str] | None = None
) -> dict[str, str]:
    """A keys file with, per tenant, a read+write, a read-only and a write-only key, plus an admin key
    (new random keys, or those of ``reuse``: replicas that take the same keys)."""
    keys: dict[str, str] = {}
    entries: list[dict[str, Any]] = []
    for tenant in tenants:
        for suffix, scopes in (("", ["write", "read"]), (":read", ["read"]), (":write", ["write"])):
            name = tenant + suffix
            keys[name] = (reuse or {}).get(name) or f"test-{name.replace(':', '-')}-{secrets.token_hex(8)}"
            entries.append({"key": keys[name], "tenant": tenant, "scopes": scopes, "id": name})
    keys["admin"] = (reuse or {}).get("admin") or f"test-admin-{secrets.token_hex(8)}"
    entries.append({"key": keys["admin"], "tenant": "*", "scopes": ["admin"], "id": "admin"})
    path.write_text(yaml.safe_dump({"keys": entries}))
    return keys


class Exporter:
    """Start/stop the exporter process; helpers for auth headers, posting, and scrape configs."""

    def __init__(
        self,
        workdir: Path,
        tenants: Sequence[str] = DEFAULT_TENANTS,
        extra_args: Sequence[str] = (),
        keys: dict[str, str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tenants = tuple(tenants)
        self.keys_file = self.workdir / "exporter-keys.yaml"
        self.keys = write_keys_file(self.keys_file, self.tenants, keys)
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.target}"
        self.log_path = self.workdir / "exporter.log"
        self.child = ChildProcess(
            "exporter",
            tenantpulse_command(
                "exporter", "--host", "127.0.0.1", "--port", str(self.port), "--api-keys", str(self.keys_file),
                *extra_args,
            ),
            self.log_path,
            env=python_env(),
            cwd=REPO,
        )  # fmt: skip

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.child.proc

    def start(self) -> Exporter:
        self.child.start(f"{self.url}/readyz", timeout=30)
        return self

    def stop(self) -> None:
        self.child.stop()

    def __enter__(self) -> Exporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def auth(self, key: str) -> dict[str, str]:
        """``Authorization`` header for a key by name (``"t1"``, ``"t1:read"``, ``"admin"``)."""
        return {"Authorization": f"Bearer {self.keys[key]}"}

    def post(self, body: dict[str, Any], key: str, check: bool = True) -> requests.Response:
        """POST one event / business object / batch to the ingest API with the named key."""
        r = requests.post(f"{self.url}/analytics/metrics", json=body, headers=self.auth(key), timeout=10)
        if check and r.status_code != 200:
            raise AssertionError(f"ingest refused: {r.status_code} {r.text}")
        return r

    def metrics(self, tenant: str | None = None, openmetrics: bool = False) -> str:
        headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
        params = {"tenant": tenant} if tenant else {}
        r = requests.get(f"{self.url}/metrics", params=params, headers=headers, timeout=10)
        r.raise_for_status()
        return r.text

    def scrape_config(self, job: str = "tenantpulse", tenant: str | None = None) -> dict[str, Any]:
        config: dict[str, Any] = {"job_name": job, "static_configs": [{"targets": [self.target]}]}
        if tenant is not None:
            config["params"] = {"tenant": [tenant]}
        return config

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (non-JSON lines are skipped)."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):
                out.append(doc)
        return out


def write_pseudonym_key_file(path: Path, secret: str) -> Path:
    """A pseudonym key file with one key (``v1``): what every replica sharing a Redis must be given."""
    path.write_text(yaml.safe_dump({"current": "v1", "keys": {"v1": secret}}))
    return path


class Replicas:
    """``n`` exporters sharing ``redis_url`` (with ``--redis-cluster`` if ``cluster``), one API keys file's
    keys and one pseudonym key; ``post`` sends each key's requests to each replica in turn (so every
    tenant's traffic is spread over all of them, whatever order the tenants come in)."""

    def __init__(
        self,
        workdir: Path,
        n: int,
        redis_url: str,
        cluster: bool = False,
        tenants: Sequence[str] = DEFAULT_TENANTS,
        extra_args: Sequence[str] = (),
        pseudonym_secret: str = "replicas-share-this-pseudonym-key",
    ) -> None:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        self.pseudonym_key = pseudonym_secret.encode()
        pk = write_pseudonym_key_file(workdir / "pseudonym-keys.yaml", pseudonym_secret)
        args = [
            "--redis-url",
            redis_url,
            *(["--redis-cluster"] if cluster else []),
            "--pseudonym-key-file",
            str(pk),
        ]
        self.replicas: list[Exporter] = []
        for i in range(n):
            keys = self.replicas[0].keys if self.replicas else None
            self.replicas.append(Exporter(workdir / f"replica{i}", tenants, [*args, *extra_args], keys=keys))
        self.keys = self.replicas[0].keys
        self._next: dict[str, int] = {}
        self._sessions = [requests.Session() for _ in self.replicas]

    def start(self) -> Replicas:
        try:
            for replica in self.replicas:
                replica.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()
        for session in self._sessions:
            session.close()

    def __enter__(self) -> Replicas:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def post(self, body: dict[str, Any], key: str) -> requests.Response:
        """POST to the key's next replica in turn (not thread-safe: one posting thread)."""
        i = self._next.get(key, 0)
        self._next[key] = (i + 1) % len(self.replicas)
        url = f"{self.replicas[i].url}/analytics/metrics"
        return self._sessions[i].post(url, json=body, headers=self.replicas[i].auth(key), timeout=30)

    def metrics(self) -> list[str]:
        return [r.metrics() for r in self.replicas]

    def scrape_config(self, job: str = "tenantpulse") -> dict[str, Any]:
        return {"job_name": job, "static_configs": [{"targets": [r.target for r in self.replicas]}]}


def sample_value(exposition: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` whose labels include ``labels``, parsed by prometheus_client."""
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextlib.contextmanager
def app_client(
    workdir: Path, tenants: Sequence[str] = DEFAULT_TENANTS, **settings: Any
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The exporter app in-process behind a ``TestClient`` (lifespan run), and its keys by name."""
    from tenantpulse.exporters.app import create_app
    from tenantpulse.exporters.settings import ExporterSettings

    keys_file = Path(workdir) / "exporter-keys.yaml"
    keys = write_keys_file(keys_file, tenants)
    app = create_app(ExporterSettings(api_keys_file=keys_file, **settings))
    with TestClient(app) as client:
        yield client, keys


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[Exporter]:
    """A running exporter for tenants t1, t2, t3 (see ``Exporter``)."""
    with Exporter(tmp_path / "exporter") as ex:
        yield ex
