"""TLS serving: a self-signed pair made in the test; TLS 1.3 negotiated, TLS 1.1 refused, bad pairs refused."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from tenantpulse.kernel.errors import UsageError
from tenantpulse.kernel.serving import check_tls_files
from tests.support.ports import free_port, wait_until
from tests.support.tls import self_signed

APP = """
import sys
from fastapi import FastAPI
from tenantpulse.kernel.serving import serve
app = FastAPI()
@app.get("/healthz")
def healthz():
    return {"ok": True}
serve(app, "127.0.0.1", int(sys.argv[1]), sys.argv[2], sys.argv[3])
"""


def _handshake(port: int, cafile: Path, maximum: ssl.TLSVersion | None = None) -> str:
    ctx = ssl.create_default_context(cafile=str(cafile))
    if maximum is not None:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # so only the server's policy can refuse old versions
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = maximum
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        reply = tls.recv(4096).decode()
        assert reply.startswith("HTTP/1.1 200"), reply
        return tls.version() or ""


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
def test_tls_server_prefers_13_and_refuses_old_versions(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", APP, str(port), str(cert), str(key)])
    try:
        wait_until(lambda: _handshake(port, cert), what="TLS server")
        assert _handshake(port, cert) == "TLSv1.3"
        assert _handshake(port, cert, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
        with pytest.raises(ssl.SSLError):
            _handshake(port, cert, ssl.TLSVersion.TLSv1_1)
    finally:
        proc.terminate()
        proc.wait(10)


def test_bad_tls_flags_are_usage_errors(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    other_cert, _ = self_signed(tmp_path / "other")
    with pytest.raises(UsageError, match="go together"):
        check_tls_files(str(cert), None)
    with pytest.raises(UsageError, match="no such file"):
        check_tls_files(str(tmp_path / "missing.pem"), str(key))
    with pytest.raises(UsageError, match="cannot load the pair"):
        check_tls_files(str(other_cert), str(key))
