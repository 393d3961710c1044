"""Cost of the audit trail middleware on the exporter's hot paths, as a ratio to the same app without it.

Both apps are built by ``exporters.app.create_app`` in this process with the same keys and an audit log;
the baseline has ``security.audit_http.AuditTrail`` taken out of its middleware. Requests go straight
through ASGI (no sockets), alternating rounds, so the figure is the middleware's own CPU cost:
accepted one-event ingest (not audited, but passes through the middleware) and a refused key
(audited, within the refusal budget). Run: ``python -m benchmarks audit_overhead``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tenantpulse.exporters.app import create_app
from tenantpulse.exporters.settings import ExporterSettings
from tenantpulse.otel.logging import configure_logging
from tenantpulse.security.audit_http import AuditTrail
from tests.support.exporter import write_keys_file

REQUESTS = 2_000
ROUNDS = 5


def build(workdir: Path, audited: bool) -> tuple[Any, dict[str, str]]:
    keys = write_keys_file(workdir / "keys.yaml", ["t1"])
    settings = ExporterSettings(
        api_keys_file=workdir / "keys.yaml", rate_limit=1e12, audit_log=workdir / "audit.jsonl"
    )
    app = create_app(settings)
    if not audited:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not AuditTrail]
    return app, keys


async def call(app: Any, method: str, path: str, token: str, body: bytes = b"") -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 9464),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def timed(app: Any, keys: dict[str, str], kind: str) -> float:
    event = json.dumps({"tenant_id": "t1", "user_id": "u", "event_type": "song_play"}).encode()
    started = time.perf_counter()
    for _ in range(REQUESTS):
        if kind == "ingest":
            status = await call(app, "POST", "/analytics/metrics", keys["t1"], event)
            assert status == 200, status
        else:
            status = await call(app, "GET", "/analytics/metrics/t1", "not-a-key")
            assert status == 401, status
    return (time.perf_counter() - started) / REQUESTS


def main() -> None:
    # Access logs are rendered as in production (JSON) but discarded, on both sides alike.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        configure_logging("info", "json")
        _run()


def _run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        apps = {}
        for audited in (True, False):
            work = Path(tmp) / str(audited)
            work.mkdir()
            apps[audited] = build(work, audited)
        for kind in ("ingest", "refused"):
            samples: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(ROUNDS):
                for audited, (app, keys) in apps.items():
                    samples[audited].append(asyncio.run(timed(app, keys, kind)))
            with_audit, without = statistics.median(samples[True]), statistics.median(samples[False])
            print(
                f"audit middleware, {kind:7s}: {with_audit * 1e6:7.1f} us/request vs baseline without it "
                f"{without * 1e6:7.1f} us/request -> ratio {with_audit / without:.3f}"
            )


if __name__ == "__main__":
    main()
