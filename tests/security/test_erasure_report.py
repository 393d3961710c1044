"""The erasure answer says exactly what was and was not reached (issue 18, item 9).

Regressions, each failing before its fix:

- the sidecar's erase answered a bare 500 when its state file could not be written, after the tenant was
  already gone from memory; it now answers 503 ``state_not_saved`` saying what was done, and the exporter
  reports the sidecar ``failed`` with that reason;
- without ``--sidecar-url`` the exporter answered ``complete: true`` while the sidecar still held the
  tenant and Prometheus scraped its scores again; now the sidecar is ``not_configured`` with a hint, and
  Prometheus is ``failed`` naming the target that still exposes the tenant;
- a backfill in flight during an erasure learned the tenant's history again;
- a periodic state save snapshotted just before an erasure could land after the erasure's own save and
  put the tenant back into the state file.

In-process parts use the sidecar against a scripted Prometheus API on loopback; the end-to-end part runs
the real exporter, sidecar and Prometheus.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from tenantpulse.anomaly_sidecar import state as state_file
from tenantpulse.anomaly_sidecar.app import create_app
from tenantpulse.anomaly_sidecar.service import SidecarService
from tenantpulse.conventions import catalog as c
from tenantpulse.exporters.traffic import TenantProfile, TrafficGenerator
from tenantpulse.security.keys import ApiKey, KeyRing, sha256_hex
from tests.anomaly_sidecar.test_service import TENANTS, World, make_service
from tests.support.exporter import Exporter, app_client, bearer
from tests.support.ports import free_port, wait_until
from tests.support.prometheus import Prometheus
from tests.support.sidecar import FakePrometheusApi, Sidecar

ADMIN = "erasure-report-admin"


def state_tenants(path: Path) -> set[str]:
    payload = state_file.load(path)
    assert payload is not None
    _, meta = state_file.unpack(payload)
    return {tenant for tenant, _, _ in meta["series"]}


def model_tenants(service: SidecarService) -> set[str]:
    return {m["tenant_id"] for m in service.models()}


@pytest.fixture
def world() -> Iterator[tuple[World, FakePrometheusApi]]:
    w = World(TENANTS)
    with FakePrometheusApi(w.answer) as api:
        yield w, api


def sidecar_client(service: SidecarService) -> TestClient:
    ring = KeyRing([ApiKey("admin", sha256_hex(ADMIN), "*", frozenset({"admin"}))])
    return TestClient(create_app(service, ring, run_loop=False))


def make_unwritable(path: Path, how: str) -> None:
    """The state path cannot be written, even by root: a directory in its place, or a file for its directory."""
    if how == "directory at the path":
        path.unlink()
        path.mkdir()
    else:
        parent = path.parent
        for child in parent.iterdir():
            child.unlink()
        parent.rmdir()
        parent.write_text("not a directory")


@pytest.mark.parametrize("how", ["directory at the path", "file for its directory"])
def test_the_sidecar_answers_503_saying_memory_was_erased_but_the_state_was_not_saved(
    world: tuple[World, FakePrometheusApi], tmp_path: Path, how: str
) -> None:
    _, api = world
    path = tmp_path / "state" / "state.bin"
    service = make_service(api, state_path=str(path))
    service.backfill(60.0)
    service.save_state()
    make_unwritable(path, how)
    with sidecar_client(service) as client:
        r = client.delete("/analytics/tenants/t3", headers=bearer(ADMIN))
        assert r.status_code == 503, r.text  # was a bare 500 "internal_error"
        body = r.json()
        assert body["error"] == "state_not_saved"
        assert "erased from memory" in body["reason"] and "still holds the tenant" in body["reason"]
        done = body["detail"][0]
        assert done["memory_erased"] is True and done["series"] == 2 and done["state_file"] == "failed"
        assert done["state_error"]
        assert "t3" not in model_tenants(service)  # memory was erased all the same
        assert 'tenant="t3"' not in service.table.body().decode()

        # Once the state file can be written again, calling again finishes the job (idempotent).
        if how == "directory at the path":
            path.rmdir()
        else:
            path.parent.unlink()
        again = client.delete("/analytics/tenants/t3", headers=bearer(ADMIN))
        assert again.status_code == 200, again.text
        assert again.json() == {
            "tenant_id": "t3",
            "series": 0,
            "memory_erased": True,
            "state_file": "saved",
            "shard": [0, 1],
        }
    assert "t3" not in state_tenants(path) and "t4" in state_tenants(path)


def test_without_a_state_file_the_sidecar_says_so(world: tuple[World, FakePrometheusApi]) -> None:
    _, api = world
    service = make_service(api)
    service.backfill(60.0)
    with sidecar_client(service) as client:
        r = client.delete("/analytics/tenants/t3", headers=bearer(ADMIN))
    assert r.status_code == 200
    assert r.json()["state_file"] == "not_configured" and r.json()["series"] == 2


def test_a_backfill_in_flight_does_not_bring_an_erased_tenant_back(
    world: tuple[World, FakePrometheusApi],
) -> None:
    """The backfill's range query is answered only after the erasure; it must not learn the tenant again."""
    w, _ = world
    asked, release = threading.Event(), threading.Event()

    def slow(path: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, Any]:
        if path.endswith("/query_range") and not release.is_set():
            asked.set()
            release.wait(1.5)  # under the reader's 2 s timeout
        return w.answer(path, form, headers)

    with FakePrometheusApi(slow) as api:
        service = make_service(api)
        service.cycle()
        assert "t3" in model_tenants(service)
        backfill = threading.Thread(target=service.backfill, args=(60.0,))
        backfill.start()
        assert asked.wait(5)
        service.remove_tenant("t3")
        release.set()
        backfill.join(10)
        assert not backfill.is_alive()
        assert "t3" not in model_tenants(service)
        assert 'tenant="t3"' not in service.table.body().decode()
        assert "t4" in model_tenants(service)  # the others learned their history


class GatedCodec:
    """The plain codec, but the first save after ``arm`` waits inside ``encode`` until ``release``: it has
    taken its snapshot and not yet written it (a slow disk, an encryption of a large state)."""

    name = "plain"

    def __init__(self) -> None:
        self.armed, self.entered, self.gate = False, threading.Event(), threading.Event()

    def encode(self, data: bytes) -> bytes:
        if self.armed:
            self.armed = False
            self.entered.set()
            self.gate.wait(10)
        return data

    def decode(self, data: bytes) -> bytes:
        return data


def test_a_save_snapshotted_before_an_erasure_never_lands_after_it(
    world: tuple[World, FakePrometheusApi], tmp_path: Path
) -> None:
    _, api = world
    path = tmp_path / "state.bin"
    codec = GatedCodec()
    service = make_service(api, state_path=str(path), state_codec=codec)
    service.backfill(60.0)
    codec.armed = True
    periodic = threading.Thread(target=service.save_state)  # the loop's save: snapshot holds t3
    periodic.start()
    assert codec.entered.wait(5)
    erasure = threading.Thread(target=service.remove_tenant, args=("t3",))
    erasure.start()
    erasure.join(0.5)  # fixed: waits for the save in progress, then writes after it
    codec.gate.set()
    periodic.join(10)
    erasure.join(10)
    assert not periodic.is_alive() and not erasure.is_alive()
    assert "t3" not in state_tenants(path), "the older snapshot was written over the erasure's save"
    assert "t4" in state_tenants(path)


class ScriptedPrometheus:
    """Prometheus's series, admin, targets, rules and query APIs on loopback, answering as scripted:
    deletions succeed, every target was just scraped, and ``/api/v1/query`` answers ``query``."""

    def __init__(self, query: tuple[int, bytes]) -> None:
        recent = "2999-01-01T00:00:00.123456789Z"  # scraped after any erasure
        answers = {
            "/api/v1/series": (200, {"status": "success", "data": [{"__name__": "x", c.TENANT: "t1"}]}),
            "/api/v1/targets": (
                200,
                {"data": {"activeTargets": [{"health": "up", "scrapeInterval": "1s", "lastScrape": recent}]}},
            ),
            "/api/v1/rules": (200, {"data": {"groups": []}}),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                path = self.path.split("?")[0]
                if path == "/api/v1/query":
                    self.answer(*query)
                else:
                    status, body = answers[path]
                    self.answer(status, json.dumps(body).encode())

            def do_POST(self) -> None:  # noqa: N802
                self.answer(204, b"")  # delete_series, clean_tombstones

            def answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def erase_with(tmp_path: Path, prometheus: ScriptedPrometheus) -> dict[str, Any]:
    with app_client(tmp_path, prometheus_url=prometheus.url) as (client, keys):
        event = {"tenant_id": "t1", "event_type": "song_play"}
        client.post("/analytics/metrics", json=event, headers=bearer(keys["t1"])).raise_for_status()
        r = client.delete("/analytics/tenants/t1", headers=bearer(keys["admin"]))
    assert r.status_code == 200, r.text
    report: dict[str, Any] = r.json()
    return report


def test_a_query_api_that_cannot_tell_is_reported_not_a_500(tmp_path: Path) -> None:
    prometheus = ScriptedPrometheus((503, b"overloaded"))
    try:
        report = erase_with(tmp_path, prometheus)
    finally:
        prometheus.close()
    assert report["prometheus"]["status"] == "removed"
    assert report["prometheus"]["detail"]["still_exposed"] == "unknown: JSONDecodeError"


def test_a_target_that_still_exposes_the_tenant_fails_prometheus(tmp_path: Path) -> None:
    row = {"metric": {"job": "sidecar-1", "instance": "10.0.0.9:9108"}, "value": [0, "7"]}
    found = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [row]}}).encode()
    prometheus = ScriptedPrometheus((200, found))
    try:
        report = erase_with(tmp_path, prometheus)
    finally:
        prometheus.close()
    place = report["prometheus"]
    assert place["status"] == "failed" and "prometheus" in report["pending"]
    assert place["detail"]["still_exposed"] == [
        {"job": "sidecar-1", "instance": "10.0.0.9:9108", "series": 7}
    ]
    assert "job 'sidecar-1' instance '10.0.0.9:9108' (7 series)" in place["reason"]
    assert "every shard" in place["hint"]


# --- end to end: the real exporter (without --sidecar-url), sidecar and Prometheus -------------------

ALL, KEPT = ("t1", "t2", "t3"), "t1"
WATCH = "request_rate"


def prom_tenants(prom: Prometheus) -> set[str]:
    rows = prom.query(f'{{{c.TENANT}=~".+"}}[1h]')
    return {r["metric"][c.TENANT] for r in rows if r["values"]}


def sidecar_models(sidecar: Sidecar) -> set[str]:
    r = sidecar.get("/analytics/ml/models", key="admin")
    r.raise_for_status()
    return {m["tenant_id"] for m in r.json()["models"]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("erasure-report")
    sidecar_port, prom_port = free_port(), free_port()
    exporter = Exporter(
        work / "exporter", tenants=ALL, extra_args=["--prometheus-url", f"http://127.0.0.1:{prom_port}"]
    ).start()
    prom = Prometheus(
        work,
        [
            exporter.scrape_config("tenantpulse"),
            {"job_name": "sidecar", "static_configs": [{"targets": [f"127.0.0.1:{sidecar_port}"]}]},
        ],
        scrape_interval="250ms",
        evaluation_interval="250ms",
    )
    prom.port, prom.url = prom_port, f"http://127.0.0.1:{prom_port}"
    sidecar = Sidecar(
        work / "sidecar",
        prom.url,
        tenants=ALL,
        port=sidecar_port,
        extra_args=[
            "--indicators", WATCH, "--interval", "250ms", "--rate-window", "2s", "--backfill", "5s",
            "--state-every", "1s", "--forecast-every", "1h",
        ],
    )  # fmt: skip
    (work / "sidecar-admin.key").write_text(sidecar.keys["admin"])
    traffic = {
        t: TrafficGenerator(exporter.url, [TenantProfile(t, exporter.keys[t], rate=50.0)], seed=i)
        for i, t in enumerate(ALL)
    }
    try:
        for generator in traffic.values():
            generator.start(interval=0.25)
        prom.start()
        wait_until(lambda: prom_tenants(prom) == set(ALL), timeout=30, what="all tenants in Prometheus")
        sidecar.start()
        wait_until(lambda: sidecar_models(sidecar) == set(ALL), timeout=30, what="sidecar models")
        for t in ALL:
            score = c.ANOMALY_SCORE.selector(tenant=t)
            wait_until(lambda s=score: prom.query(s), timeout=30, what=f"the sidecar's {t} scores")
        for t in ALL:
            if t != KEPT:
                traffic[t].stop()  # these tenants left; t1 goes on sending
        yield {"exporter": exporter, "prom": prom, "sidecar": sidecar, "key_file": work / "sidecar-admin.key"}
    finally:
        for generator in traffic.values():
            generator.stop()
        sidecar.stop()
        prom.stop()
        exporter.stop()


def erase_through(exporter: Exporter, tenant: str) -> dict[str, Any]:
    r = requests.delete(
        f"{exporter.url}/analytics/tenants/{tenant}", headers=exporter.auth("admin"), timeout=60
    )
    assert r.status_code == 200, r.text
    report: dict[str, Any] = r.json()
    return report


@pytest.mark.integration
def test_without_sidecar_url_the_answer_says_the_sidecar_was_not_reached(stack: dict[str, Any]) -> None:
    exporter: Exporter = stack["exporter"]
    prom: Prometheus = stack["prom"]
    sidecar: Sidecar = stack["sidecar"]

    report = erase_through(exporter, "t2")
    assert report["complete"] is False, report  # was true
    assert report["pending"] == ["prometheus", "sidecar"]
    assert report["exporter"]["status"] == "removed"
    assert report["sidecar"]["status"] == "not_configured"
    assert "DELETE /analytics/tenants/t2" in report["sidecar"]["hint"]
    # Prometheus was emptied of t2, but the sidecar it scrapes still exposes t2's scores: said, by target.
    assert report["prometheus"]["status"] == "failed", report["prometheus"]
    exposed = report["prometheus"]["detail"]["still_exposed"]
    assert [(e["job"], e["instance"]) for e in exposed] == [("sidecar", sidecar.target)]
    assert exposed[0]["series"] > 0
    assert "job 'sidecar'" in report["prometheus"]["reason"]
    # ... which is the truth: they come back into Prometheus.
    wait_until(lambda: prom.query(c.ANOMALY_SCORE.selector(tenant="t2")), timeout=10, what="t2 scores back")

    # Following the hints finishes it: erase on the sidecar, then call the exporter again.
    direct = requests.delete(
        f"{sidecar.url}/analytics/tenants/t2",
        headers={"Authorization": f"Bearer {sidecar.keys['admin']}"},
        timeout=30,
    )
    assert direct.status_code == 200, direct.text
    assert direct.json()["series"] == 1 and direct.json()["state_file"] == "saved"
    again = erase_through(exporter, "t2")
    assert again["prometheus"]["status"] == "removed", again["prometheus"]
    assert again["prometheus"]["detail"]["still_exposed"] == []
    assert again["pending"] == ["sidecar"]  # still not configured: the exporter cannot check it itself
    assert "t2" not in prom_tenants(prom) and "t2" not in sidecar_models(sidecar)
    assert KEPT in prom_tenants(prom)


@pytest.mark.integration
def test_a_sidecar_that_cannot_save_its_state_is_reported_by_the_exporter(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    exporter: Exporter = stack["exporter"]
    sidecar: Sidecar = stack["sidecar"]
    erase_through(exporter, "t3")  # the exporter's and Prometheus's part: the sidecar cannot relearn t3

    state = sidecar.state_file
    for _ in range(100):  # the sidecar saves every second: put a directory in the file's place
        state.unlink(missing_ok=True)
        try:
            state.mkdir()
            break
        except FileExistsError:
            continue
    try:
        with app_client(tmp_path, ALL, sidecar_url=sidecar.url, sidecar_key_file=stack["key_file"]) as (
            client,
            keys,
        ):
            r = client.delete("/analytics/tenants/t3", headers=bearer(keys["admin"]))
            assert r.status_code == 200, r.text
            report = r.json()
            place = report["sidecar"]
            assert place["status"] == "failed", place
            # was "sidecar answered HTTP 500: internal error; see the server log"
            assert "could not be saved" in place["reason"] and "still holds the tenant" in place["reason"]
            assert report["complete"] is False and "sidecar" in report["pending"]
            assert place["detail"]["memory_erased"] is True and place["detail"]["series"] == 1
            assert "state file writable" in place["hint"]
            assert "t3" not in sidecar_models(sidecar)
    finally:
        state.rmdir()
    entries = [
        json.loads(line) for line in (sidecar.workdir / "sidecar-audit.jsonl").read_text().splitlines()
    ]
    erasures = [
        (e["tenant"], e["outcome"], e["detail"]["status"]) for e in entries if e["action"] == "tenant.erase"
    ]
    assert ("t3", "failed", 503) in erasures
    wait_until(lambda: state.is_file() and "t3" not in state_tenants(state), timeout=10, what="state saved")
