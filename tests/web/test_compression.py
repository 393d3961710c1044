"""``/metrics`` is gzipped exactly when the scraper accepts gzip: a real Prometheus stores the same
samples as a plain scrape, clients that do not ask (curl) get plain text, and ``q=0`` refuses gzip."""

from __future__ import annotations

import gzip
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tenantpulse.conventions import catalog as c
from tenantpulse.web.compression import accepts_gzip
from tests.anomaly_sidecar.test_api import api  # noqa: F401 - the sidecar app fixture
from tests.gateway.test_app import ScriptedBackend, backend, keys, make_client  # noqa: F401 - gateway fixtures
from tests.support.exporter import Exporter
from tests.support.prometheus import Prometheus, require
from tests.support.recording_proxy import RecordingProxy


@pytest.mark.parametrize(
    ("header", "gzipped"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),  # Prometheus 2.x sends "gzip" alone
        ("gzip;q=0.5", True),  # identity unranked: it comes last
        ("*", True),
        ("deflate, *;q=0.3", True),
        ("", False),
        ("identity", False),
        ("deflate, br", False),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("gzip;q=0, *", False),  # the named coding wins over the wildcard
        ("*;q=0", False),
        ("gzip;q=0.3, identity;q=0.5", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_accept_encoding_negotiation(header: str, gzipped: bool) -> None:
    assert accepts_gzip(header) is gzipped


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def fed_exporter(tmp_path: Path) -> Iterator[Exporter]:
    with Exporter(tmp_path / "exporter") as ex:
        events = [{"tenant_id": "t1", "user_id": f"u{i}", "event_type": f"type_{i % 7}"} for i in range(40)]
        ex.post({"events": events}, key="t1")
        yield ex


def test_exporter_gzips_for_gzip_clients_only(fed_exporter: Exporter) -> None:
    url = f"{fed_exporter.url}/metrics"
    zipped = requests.get(url, headers={"Accept-Encoding": "gzip"}, timeout=10, stream=True)
    raw = zipped.raw.read(decode_content=False)
    assert zipped.headers["Content-Encoding"] == "gzip" and zipped.headers["Vary"] == "Accept-Encoding"
    plain = requests.get(url, headers={"Accept-Encoding": "identity"}, timeout=10)
    assert "Content-Encoding" not in plain.headers and plain.headers["Vary"] == "Accept-Encoding"
    assert len(raw) < len(plain.content) / 3
    unzipped, text = samples(gzip.decompress(raw).decode()), samples(plain.text)
    assert unzipped.keys() == text.keys()
    events = {k: v for k, v in text.items() if k[0] == f"{c.EVENTS.family}_total"}
    assert len(events) == 7 and events == {k: unzipped[k] for k in events}
    refused = requests.get(url, headers={"Accept-Encoding": "gzip;q=0, deflate"}, timeout=10)
    assert "Content-Encoding" not in refused.headers and samples(refused.text).keys() == text.keys()


def test_curl_without_compressed_gets_plain_text(fed_exporter: Exporter) -> None:
    curl = require("curl")
    headers = subprocess.run(
        [curl, "-s", "-D", "-", "-o", "/dev/null", f"{fed_exporter.url}/metrics"],
        capture_output=True, text=True, check=True, timeout=10,
    ).stdout.lower()  # fmt: skip
    body = subprocess.run(
        [curl, "-s", f"{fed_exporter.url}/metrics"], capture_output=True, check=True, timeout=10
    ).stdout
    assert "content-encoding" not in headers and "vary: accept-encoding" in headers
    assert f"{c.EVENTS.family}_total{{".encode() in body  # readable text, not gzip bytes
    compressed = subprocess.run(
        [curl, "-s", "--compressed", "-D", "-", "-o", "/dev/null", f"{fed_exporter.url}/metrics"],
        capture_output=True, text=True, check=True, timeout=10,
    ).stdout.lower()  # fmt: skip
    assert "content-encoding: gzip" in compressed


def test_prometheus_scraping_gzip_stores_the_same_samples(fed_exporter: Exporter, tmp_path: Path) -> None:
    (tmp_path / "prom").mkdir()
    proxy = RecordingProxy(fed_exporter.url)  # sees what Prometheus asks for; passes the gzip through
    job = {"job_name": "tp", "static_configs": [{"targets": [proxy.url.removeprefix("http://")]}]}
    with proxy, Prometheus(tmp_path / "prom", [job], scrape_interval="1s") as prom:
        deadline = time.monotonic() + 30
        while not prom.targets_up() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert prom.targets_up()
        asked = [s.headers.get("accept-encoding", "") for s in proxy.seen if s.path.startswith("/metrics")]
        assert asked and all(accepts_gzip(a) for a in asked)
        plain = samples(
            requests.get(f"{fed_exporter.url}/metrics", headers={"Accept-Encoding": "identity"}).text
        )
        stored = {
            (row["metric"].pop("__name__"), frozenset(row["metric"].items() - {("job", "tp")})): float(
                row["value"][1]
            )
            for row in prom.query('{job="tp"}')
            if not row["metric"]["__name__"].startswith("scrape_") and row["metric"]["__name__"] != "up"
        }
    stored = {
        (name, frozenset(kv for kv in labels if kv[0] != "instance")): v
        for (name, labels), v in stored.items()
    }
    assert stored.keys() == plain.keys()
    events = {k: v for k, v in plain.items() if k[0] == f"{c.EVENTS.family}_total"}
    assert len(events) == 7 and events == {k: stored[k] for k in events}


def test_sidecar_metrics_honours_accept_encoding(api: tuple[TestClient, object]) -> None:  # noqa: F811
    client, _ = api
    zipped = client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    plain = client.get("/metrics", headers={"Accept-Encoding": "identity"})
    refused = client.get("/metrics", headers={"Accept-Encoding": "gzip;q=0"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["vary"] == "Accept-Encoding"
    assert "content-encoding" not in plain.headers and "content-encoding" not in refused.headers
    assert zipped.text.count(c.ANOMALY_SCORE.name + "{") == plain.text.count(c.ANOMALY_SCORE.name + "{") > 0
    assert samples(zipped.text).keys() == samples(plain.text).keys()


def test_gateway_metrics_honours_accept_encoding(
    tmp_path: Path,
    backend: ScriptedBackend,  # noqa: F811
    keys: dict[str, str],  # noqa: F811
) -> None:
    with make_client(tmp_path, backend) as client:
        assert client.get("/nowhere").status_code == 404  # counted: the exposition has a sample
        zipped = client.get("/metrics", headers={"Accept-Encoding": "gzip"})
        plain = client.get("/metrics", headers={"Accept-Encoding": "gzip;q=0"})
    assert zipped.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert samples(zipped.text).keys() == samples(plain.text).keys() != set()
