"""Right to erasure, all real processes on loopback: exporter <- traffic for t1, t2, t3; Prometheus (admin
API on) scrapes the exporter and the sidecar; the sidecar (encrypted state file) reads Prometheus.

``DELETE /analytics/tenants/t2`` on the exporter must leave no trace of t2 in the exporter (/metrics,
snapshot), the sidecar (/metrics, models, the decrypted state file) or Prometheus (any query over the
last hour), keep t1 and t3 everywhere, stay erased while t1/t3 traffic goes on, and be audited in both
processes' hash chains (the exporter's and the sidecar's), with key ids and never keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tenantpulse.anomaly_sidecar import state as state_file
from tenantpulse.conventions import catalog as c
from tenantpulse.exporters.traffic import TenantProfile, TrafficGenerator
from tenantpulse.security.audit import verify
from tenantpulse.security.state_crypto import StateCipher, new_key_hex
from tests.support.exporter import Exporter, app_client, bearer
from tests.support.ports import free_port, wait_until
from tests.support.prometheus import Prometheus
from tests.support.sidecar import Sidecar

TENANTS = ("t1", "t2", "t3")
GONE, KEPT = "t2", ("t1", "t3")
WATCH = "request_rate"


def prom_tenants(prom: Prometheus) -> set[str]:
    """Tenants with any sample in Prometheus over the last hour, from any job (raw samples)."""
    rows = prom.query(f'{{{c.TENANT}=~".+"}}[1h]')
    return {r["metric"][c.TENANT] for r in rows if r["values"]}


def sidecar_state_tenants(sidecar: Sidecar, key_hex: str) -> set[str]:
    payload = state_file.load(sidecar.state_file, state_file.CipherCodec(StateCipher(bytes.fromhex(key_hex))))
    assert payload is not None
    _, meta = state_file.unpack(payload)
    return {tenant for tenant, _, _ in meta["series"]}


def model_tenants(sidecar: Sidecar) -> set[str]:
    r = sidecar.get("/analytics/ml/models", key="admin")
    r.raise_for_status()
    return {m["tenant_id"] for m in r.json()["models"]}


def audit_entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("erasure")
    sidecar_port, prom_port = free_port(), free_port()
    state_key = new_key_hex()
    (work / "state.key").write_text(state_key)
    sidecar_key_file = work / "sidecar-admin.key"
    sidecar_key_file.write_text("sidecar-test-admin\n")  # tests.support.sidecar's admin key
    audit = work / "exporter-audit.jsonl"
    exporter = Exporter(
        work / "exporter",
        tenants=TENANTS,
        extra_args=[
            "--prometheus-url", f"http://127.0.0.1:{prom_port}",
            "--sidecar-url", f"http://127.0.0.1:{sidecar_port}",
            "--sidecar-key-file", str(sidecar_key_file),
            "--audit-log", str(audit),
        ],
    ).start()  # fmt: skip
    prom = Prometheus(
        work,
        [
            exporter.scrape_config("tenantpulse"),
            {"job_name": "sidecar", "static_configs": [{"targets": [f"127.0.0.1:{sidecar_port}"]}]},
        ],
        scrape_interval="250ms",
        evaluation_interval="250ms",
    )
    prom.port, prom.url = prom_port, f"http://127.0.0.1:{prom_port}"  # the exporter was told this port
    sidecar = Sidecar(
        work / "sidecar",
        prom.url,
        tenants=TENANTS,
        port=sidecar_port,
        extra_args=[
            "--indicators", WATCH, "--interval", "250ms", "--rate-window", "2s", "--backfill", "5s",
            "--state-every", "1s", "--forecast-every", "1h", "--state-key-file", str(work / "state.key"),
        ],
    )  # fmt: skip
    gone = TrafficGenerator(exporter.url, [TenantProfile(GONE, exporter.keys[GONE], rate=50.0)], seed=1)
    kept = TrafficGenerator(
        exporter.url, [TenantProfile(t, exporter.keys[t], rate=50.0) for t in KEPT], seed=2
    )
    try:
        gone.start(interval=0.25)
        kept.start(interval=0.25)
        prom.start()
        wait_until(lambda: prom_tenants(prom) == set(TENANTS), timeout=30, what="all tenants in Prometheus")
        sidecar.start()
        wait_until(lambda: model_tenants(sidecar) == set(TENANTS), timeout=30, what="sidecar models")
        score = c.ANOMALY_SCORE.selector(tenant=GONE)
        wait_until(lambda: prom.query(score), timeout=30, what="the sidecar's t2 scores in Prometheus")
        wait_until(
            lambda: sidecar_state_tenants(sidecar, state_key) == set(TENANTS), timeout=30, what="state saved"
        )
        gone.stop()  # the tenant has left; the others go on sending during and after the erasure
        yield {
            "exporter": exporter,
            "prom": prom,
            "sidecar": sidecar,
            "state_key": state_key,
            "audit": audit,
            "sidecar_audit": sidecar.workdir / "sidecar-audit.jsonl",
        }
    finally:
        gone.stop()
        kept.stop()
        sidecar.stop()
        prom.stop()
        exporter.stop()


@pytest.mark.integration
def test_erasure_removes_the_tenant_everywhere_and_keeps_the_others(stack: dict[str, Any]) -> None:
    exporter: Exporter = stack["exporter"]
    prom: Prometheus = stack["prom"]
    sidecar: Sidecar = stack["sidecar"]
    url = f"{exporter.url}/analytics/tenants/{GONE}"

    assert requests.delete(url, timeout=10).status_code == 401
    refused = requests.delete(url, headers=exporter.auth(GONE), timeout=10)
    assert refused.status_code == 403, refused.text
    assert f'{c.TENANT}="{GONE}"' in exporter.metrics()  # refusals erased nothing

    r = requests.delete(url, headers=exporter.auth("admin"), timeout=60)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["complete"] is True and report["pending"] == [], report
    assert report["exporter"]["status"] == "removed" and report["exporter"]["detail"]["series"] > 0
    assert report["prometheus"]["status"] == "removed"
    assert report["prometheus"]["detail"]["waited_for_scrapes"] == "done"
    assert report["prometheus"]["detail"]["still_exposed"] == []  # no target this call missed
    assert report["prometheus"]["detail"]["series"] > 0
    assert report["sidecar"]["status"] == "removed" and report["sidecar"]["detail"]["series"] == 1
    assert report["sidecar"]["detail"]["state_file"] == "saved"

    def erased_everywhere() -> None:
        assert f'{c.TENANT}="{GONE}"' not in exporter.metrics()
        snap = requests.get(
            f"{exporter.url}/analytics/metrics/{GONE}", headers=exporter.auth("admin"), timeout=10
        )
        assert snap.status_code == 404
        assert f'{c.TENANT}="{GONE}"' not in sidecar.metrics()
        assert model_tenants(sidecar) == set(KEPT)
        assert sidecar_state_tenants(sidecar, stack["state_key"]) == set(KEPT)
        assert prom_tenants(prom) == set(KEPT)

    erased_everywhere()
    # Scrapes, sidecar cycles and state saves go on: nothing brings t2 back, t1 and t3 keep flowing.
    before = prom.value(f"sum({c.EVENTS.selector(tenant=KEPT[0])})") or 0.0
    wait_until(
        lambda: (prom.value(f"sum({c.EVENTS.selector(tenant=KEPT[0])})") or 0.0) > before,
        timeout=20,
        what="t1 events still counted",
    )
    erased_everywhere()
    for t in KEPT:
        ok = requests.get(f"{exporter.url}/analytics/metrics/{t}", headers=exporter.auth(t), timeout=10)
        assert ok.status_code == 200

    # Audited in the exporter: the two refusals and the erasure, with key ids, in an intact chain.
    checked, finding = verify(stack["audit"])
    assert finding is None and checked >= 3
    mine = [e for e in audit_entries(stack["audit"]) if e["action"] == "tenant.erase"]
    assert [(e["actor"], e["outcome"], e["tenant"], e["target"]) for e in mine] == [
        ("anonymous", "unauthenticated", GONE, GONE),
        (GONE, "forbidden", GONE, GONE),
        ("admin", "ok", GONE, GONE),
    ]
    assert len({e["request_id"] for e in mine}) == 3 and all(e["request_id"] for e in mine)
    # ... and in the sidecar, which the exporter called with its admin key.
    checked, finding = verify(stack["sidecar_audit"])
    assert finding is None
    side = [e for e in audit_entries(stack["sidecar_audit"]) if e["action"] == "tenant.erase"]
    assert [(e["actor"], e["outcome"], e["tenant"]) for e in side] == [("admin", "ok", GONE)]
    for text in (stack["audit"].read_text(), stack["sidecar_audit"].read_text()):
        for secret in (*exporter.keys.values(), *sidecar.keys.values()):
            assert secret not in text


def test_unreachable_places_are_reported_not_hidden(tmp_path: Path) -> None:
    """Prometheus and sidecar down: the exporter still erases its part and says what it could not do."""
    (tmp_path / "k").write_text("some-key")
    dead = f"http://127.0.0.1:{free_port()}"
    with app_client(tmp_path, prometheus_url=dead, sidecar_url=dead, sidecar_key_file=tmp_path / "k") as (
        client,
        keys,
    ):
        client.post(
            "/analytics/metrics",
            json={"tenant_id": "t1", "user_id": "u", "event_type": "song_play"},
            headers=bearer(keys["t1"]),
        ).raise_for_status()
        r = client.delete("/analytics/tenants/t1", headers=bearer(keys["admin"]))
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["complete"] is False and report["pending"] == ["prometheus", "sidecar"]
        assert report["exporter"]["status"] == "removed"
        assert report["prometheus"]["status"] == "failed" and "unreachable" in report["prometheus"]["reason"]
        assert report["sidecar"]["status"] == "failed" and "unreachable" in report["sidecar"]["reason"]
        assert all("call again" in report[p]["hint"] for p in ("prometheus", "sidecar"))
        assert client.get("/analytics/metrics/t1", headers=bearer(keys["t1"])).status_code == 404
        # Not configured is not a failure; a bad tenant id is a 422 naming the field.
        bad = client.delete("/analytics/tenants/no%20such", headers=bearer(keys["admin"]))
        assert bad.status_code == 422 and bad.json()["field"] == "tenant_id"


def test_without_places_configured_the_report_says_so(tmp_path: Path) -> None:
    """A place the exporter was not told about may still hold the tenant: not complete, and how to finish."""
    with app_client(tmp_path) as (client, keys):
        r = client.delete("/analytics/tenants/t3", headers=bearer(keys["admin"]))
        assert r.status_code == 200
        report = r.json()
        assert report["complete"] is False
        assert report["pending"] == ["prometheus", "sidecar"]
        assert report["exporter"]["status"] == "nothing_held"
        assert report["prometheus"]["status"] == "not_configured"
        assert "--prometheus-url" in report["prometheus"]["reason"]
        assert "delete_series" in report["prometheus"]["hint"]
        assert report["sidecar"]["status"] == "not_configured"
        assert "--sidecar-url" in report["sidecar"]["reason"]
        assert "DELETE /analytics/tenants/t3" in report["sidecar"]["hint"]
