"""Stalled requests are cut off: a connection that has not sent a whole request (line, headers, body)
within ``$TENANTPULSE_REQUEST_TIMEOUT`` of its first byte is closed by the server (regression: 600
half-sent requests held 600 sockets of the exporter forever), while other clients are served and a slow
handler is never cut off. Real servers on loopback; bounds are generous (the machine is noisy).
"""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tenantpulse.kernel.processes import python_env
from tenantpulse.kernel.serving import REQUEST_TIMEOUT_ENV
from tests.support.exporter import Exporter
from tests.support.ports import free_port, wait_until
from tests.support.shared import REPO
from tests.support.sidecar import FakePrometheusApi, Sidecar

TIMEOUT = 1.0
BOUND = 10 * TIMEOUT  # every stalled connection must be closed within this of its opening


def partial_requests(host: str, port: int, key: str, path: str) -> list[bytes]:
    """What each kind of stalled client sends before it stops (the drip client keeps sending bytes)."""
    body_head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
    return [
        b"",  # connects and sends nothing
        f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Slow: 1\r\n".encode(),  # headers never end
        b"GET /heal",  # not even a whole request line
        (body_head + "Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{").encode(),  # body short
        f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n".encode(),  # drip: one more header byte at a time
    ]


def closed(sock: socket.socket) -> bool:
    """The server has closed it: end of stream or a reset, with nothing but a close to read."""
    if not select.select([sock], [], [], 0)[0]:
        return False
    try:
        return sock.recv(4096) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def check_stalled_clients_are_cut_off(
    port: int, key: str, path: str, n: int, served: Callable[[], None]
) -> None:
    started = time.monotonic()
    socks, drips = [], []
    kinds = partial_requests("127.0.0.1", port, key, path)
    for i in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(kinds[i % len(kinds)])
        socks.append(sock)
        if i % len(kinds) == len(kinds) - 1:
            drips.append(sock)
    try:
        # Meanwhile everyone else is served, and the probe stays fast.
        t0 = time.monotonic()
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        assert time.monotonic() - t0 < 2.0
        served()
        open_ = set(range(n))
        while open_ and time.monotonic() - started < BOUND:
            for i in list(open_):
                if closed(socks[i]):
                    open_.discard(i)
            for sock in drips:  # active, yet never finishing its headers: the deadline still applies
                if socks.index(sock) in open_:
                    try:
                        sock.send(b"X")
                    except OSError:
                        open_.discard(socks.index(sock))
            time.sleep(0.2)
        assert not open_, f"{len(open_)} of {n} stalled connections still open after {BOUND:g}s"
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        for sock in socks:
            sock.close()


def test_exporter_closes_stalled_requests_and_serves_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REQUEST_TIMEOUT_ENV, str(TIMEOUT))
    with Exporter(tmp_path / "exporter") as ex:

        def served() -> None:
            ex.post({"tenant_id": "t1", "user_id": "u1", "event_type": "song_play"}, key="t1")

        check_stalled_clients_are_cut_off(ex.port, ex.keys["t1"], "/analytics/metrics", 50, served)
        # A body cut off is the client's doing: logged as 499, not as an unhandled error with a 500.
        wait_until(
            lambda: any(x.get("status") == 499 for x in ex.log_lines()), timeout=10, what="a 499 logged"
        )
        assert not [x for x in ex.log_lines() if x.get("event") == "unhandled error"]
        # A complete request is unaffected, on a kept-alive connection too.
        with requests.Session() as session:
            for _ in range(3):
                r = session.get(f"{ex.url}/analytics/metrics/t1", headers=ex.auth("t1"), timeout=5)
                assert r.status_code == 200 and r.json()["events"] == {"song_play": 1.0}


def test_sidecar_closes_stalled_requests_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUEST_TIMEOUT_ENV, str(TIMEOUT))
    with FakePrometheusApi(lambda path, form, headers: (503, {"status": "error", "error": "down"})) as fake:
        sidecar = Sidecar(tmp_path, fake.url, state=False).start(wait_ready=False)
        try:
            check_stalled_clients_are_cut_off(
                sidecar.port, sidecar.keys["t1"], "/analytics/ml/train", 20, lambda: None
            )
        finally:
            sidecar.stop()


SLOW_APP = textwrap.dedent(
    """
    import asyncio, sys
    from tenantpulse.kernel.serving import serve

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await asyncio.sleep(float(sys.argv[2]))  # the handler's own time: never cut off
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    serve(app, "127.0.0.1", int(sys.argv[1]), timeout=float(sys.argv[3]))
    """
)


def test_a_slow_handler_is_not_cut_off(tmp_path: Path) -> None:
    """The deadline covers the client's sending only: a handler may take longer than it."""
    port = free_port()
    script = tmp_path / "slow_app.py"
    script.write_text(SLOW_APP)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port), "3", str(TIMEOUT)], env=python_env(), cwd=REPO
    )
    try:
        wait_until(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True)
        r = requests.post(f"http://127.0.0.1:{port}/", data=b"x" * 1000, timeout=30)
        assert r.status_code == 200 and r.text == "ok"
    finally:
        proc.terminate()
        proc.wait(10)
