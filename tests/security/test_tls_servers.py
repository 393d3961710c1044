"""Every server of the bundle over TLS, as real processes with a self-signed certificate made in the test:
the exporter (ingest and ``/metrics``, scraped over HTTPS by a real Prometheus that checks the
certificate) and the anomaly sidecar (probes and the keyed ML API). Plain HTTP on the same port gets no
answer, and the handshake negotiates TLS 1.3."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
import requests

from tenantpulse.conventions import catalog as c
from tests.support.exporter import Exporter, sample_value
from tests.support.ports import free_port, wait_until
from tests.support.prometheus import Prometheus
from tests.support.sidecar import Sidecar
from tests.support.tls import self_signed

pytestmark = pytest.mark.integration


def negotiated(port: int, cafile: Path) -> str:
    ctx = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.version() or ""


def plain_http_fails(port: int) -> bool:
    try:
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    except requests.ConnectionError:
        return True
    return False


def test_exporter_and_sidecar_serve_https(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # our requests (and the helpers') trust only it
    tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
    sidecar_port = free_port()
    exporter = Exporter(tmp_path / "exporter", extra_args=tls)
    exporter.url = f"https://{exporter.target}"
    with exporter:
        assert negotiated(exporter.port, cert) == "TLSv1.3"
        assert plain_http_fails(exporter.port)
        exporter.post({"tenant_id": "t1", "user_id": "u1", "event_type": "song_play"}, key="t1")
        assert sample_value(exporter.metrics(), c.EVENTS.name, tenant="t1") == 1.0

        scrape = {
            **exporter.scrape_config("tls"),
            "scheme": "https",
            "tls_config": {"ca_file": str(cert), "server_name": "localhost"},
        }
        with Prometheus(tmp_path, [scrape]) as prom:
            wait_until(lambda: prom.value(c.EVENTS.selector(tenant="t1")) == 1.0, what="scrape over HTTPS")

            sidecar = Sidecar(tmp_path / "sidecar", prom.url, port=sidecar_port, extra_args=tls)
            sidecar.url = f"https://{sidecar.target}"
            with sidecar:
                assert negotiated(sidecar.port, cert) == "TLSv1.3"
                assert plain_http_fails(sidecar.port)
                assert sidecar.get("/analytics/ml/models", key="t1").status_code == 200
                assert sidecar.get("/analytics/ml/models", key=None).status_code == 401
                assert c.ANOMALY_STALE.name in sidecar.metrics()
