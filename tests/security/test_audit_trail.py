"""The audit trail of the real apps: every state change (alerts, dashboards, erasure on the exporter;
training and erasure on the sidecar) and every refused key is one entry in an intact hash chain that
``tenantpulse audit verify`` accepts, with the key id as actor and never the key itself."""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from tenantpulse.alert_rules.store import AlertStore
from tenantpulse.anomaly_sidecar.app import create_app
from tenantpulse.cli import main
from tenantpulse.security.audit import AuditLog, verify
from tenantpulse.security.keys import KeyRing
from tests.anomaly_sidecar.test_service import TENANTS, World, make_service
from tests.support.exporter import Exporter, app_client, bearer
from tests.support.prometheus import require
from tests.support.sidecar import FakePrometheusApi, Sidecar

SEED: dict[str, Any] = {
    "defaults": {"runbook_base": "https://rb.example", "for": "1m"},
    "alerts": [{"name": "HighErrors", "condition": "error_rate > 0.05", "severity": "critical"}],
}
EMPTY = {"status": "success", "data": {"resultType": "matrix", "result": []}}
DASHBOARD = {"name": "Audit board", "components": [{"type": "kpi", "indicator": "plays_per_minute"}]}


def entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def summary(path: Path) -> list[tuple[Any, ...]]:
    return [(e["action"], e["actor"], e["tenant"], e["target"], e["outcome"]) for e in entries(path)]


def verified(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["audit", "verify", str(path)]) == 0
    return capsys.readouterr().out


@pytest.mark.integration  # promtool checks every accepted alert change
def test_exporter_audits_changes_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require("promtool")
    spec, rules, log = tmp_path / "alerts.yaml", tmp_path / "rules", tmp_path / "audit.jsonl"
    spec.write_text(yaml.safe_dump(SEED))
    AlertStore(spec, rules)._apply(SEED)
    with app_client(tmp_path, alerts_spec=spec, rules_out=rules, audit_log=log) as (client, keys):
        admin, t1 = bearer(keys["admin"]), bearer(keys["t1"])
        new = {"name": "SlowPlays", "condition": "p95_latency > 2", "severity": "warning"}
        created = client.post("/analytics/alerts", json=new, headers=admin)
        assert created.status_code == 201, created.text
        assert (
            client.put("/analytics/alerts/SlowPlays", json={**new, "for": "2m"}, headers=admin).status_code
            == 200
        )
        assert client.post("/analytics/alerts", json={"name": "Bad"}, headers=admin).status_code == 422
        assert client.delete("/analytics/alerts/SlowPlays", headers=admin).status_code == 200
        assert client.post("/analytics/dashboards", json=DASHBOARD, headers=admin).status_code == 201
        assert client.post("/analytics/dashboards", json=DASHBOARD, headers=t1).status_code == 403
        assert client.get("/analytics/alerts").status_code == 401
        event = {"tenant_id": "t2", "user_id": "u1", "event_type": "song_play"}
        assert client.post("/analytics/metrics", json=event, headers=t1).status_code == 403
        assert client.post("/analytics/metrics", json=event, headers=bearer("not-a-key")).status_code == 401
        for _ in range(3):  # accepted ingest is data, not an audited change
            assert (
                client.post("/analytics/metrics", json={**event, "tenant_id": "t1"}, headers=t1).status_code
                == 200
            )
        erased = client.delete("/analytics/tenants/t1", headers=admin)
        assert erased.status_code == 200

    assert summary(log) == [
        ("alert.create", "admin", None, "SlowPlays", "ok"),
        ("alert.replace", "admin", None, "SlowPlays", "ok"),
        ("alert.create", "admin", None, None, "failed"),
        ("alert.delete", "admin", None, "SlowPlays", "ok"),
        ("dashboard.create", "admin", None, created_board_id(log), "ok"),
        ("dashboard.create", "t1", "t1", None, "forbidden"),
        ("GET /analytics/alerts", "anonymous", None, None, "unauthenticated"),
        ("POST /analytics/metrics", "t1", "t1", None, "forbidden"),
        ("POST /analytics/metrics", "unknown-key", None, None, "unauthenticated"),
        ("tenant.erase", "admin", "t1", "t1", "ok"),
    ]
    rows = entries(log)
    assert rows[-1]["request_id"] == erased.headers["x-request-id"]  # the id the caller saw
    assert [r["detail"]["status"] for r in rows[:3]] == [201, 200, 422]
    assert "ok: 10 entries, chain intact" in verified(log, capsys)
    text = log.read_text()
    assert all(secret not in text for secret in keys.values())

    # Tampering is caught by the same command.
    lines = text.splitlines()
    lines[5] = lines[5].replace('"forbidden"', '"ok"')
    log.write_text("\n".join(lines) + "\n")
    assert main(["audit", "verify", str(log)]) == 1
    assert "altered" in capsys.readouterr().out


def created_board_id(log: Path) -> str:
    return next(
        e["target"] for e in entries(log) if e["action"] == "dashboard.create" and e["outcome"] == "ok"
    )


@pytest.fixture
def sidecar_api(tmp_path: Path) -> Iterator[tuple[TestClient, Path, dict[str, str]]]:
    keys = {"t1": "audit-key-t1", "t2": "audit-key-t2", "admin": "audit-key-admin"}
    (tmp_path / "keys.yaml").write_text(
        yaml.safe_dump(
            {
                "keys": [
                    {"key": keys["t1"], "tenant": "t1", "scopes": ["read", "write"], "id": "k-t1"},
                    {"key": keys["t2"], "tenant": "t2", "scopes": ["read", "write"], "id": "k-t2"},
                    {"key": keys["admin"], "tenant": "*", "scopes": ["admin"], "id": "k-admin"},
                ]
            }
        )
    )
    log = tmp_path / "sidecar-audit.jsonl"
    with FakePrometheusApi(World(TENANTS).answer) as fake:
        service = make_service(fake)
        service.backfill(60.0)
        service.ready.set()
        app = create_app(
            service, KeyRing.from_file(tmp_path / "keys.yaml"), run_loop=False, audit=AuditLog(log)
        )
        with TestClient(app) as client:
            yield client, log, keys


def test_sidecar_audits_training_erasure_and_refusals(
    sidecar_api: tuple[TestClient, Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    client, log, keys = sidecar_api
    t1, admin = bearer(keys["t1"]), bearer(keys["admin"])
    train = {"tenant_id": "t1", "indicators": ["error_rate"], "window": "1m"}
    assert client.post("/analytics/ml/train", json=train, headers=t1).status_code == 200
    assert (
        client.post("/analytics/ml/train", json={**train, "tenant_id": "t2"}, headers=t1).status_code == 403
    )
    assert client.get("/analytics/ml/models", headers=bearer("wrong")).status_code == 401
    assert client.get("/analytics/ml/models", headers=t1).status_code == 200  # reads are not audited
    assert client.delete("/analytics/tenants/t2", headers=bearer(keys["t2"])).status_code == 403
    erased = client.delete("/analytics/tenants/t2", headers=admin)
    assert erased.status_code == 200 and erased.json()["series"] > 0
    assert summary(log) == [
        ("model.train", "k-t1", "t1", None, "ok"),
        ("model.train", "k-t1", "t2", None, "forbidden"),
        ("GET /analytics/ml/models", "unknown-key", None, None, "unauthenticated"),
        ("tenant.erase", "k-t2", "t2", "t2", "forbidden"),
        ("tenant.erase", "k-admin", "t2", "t2", "ok"),
    ]
    assert "ok: 5 entries, chain intact" in verified(log, capsys)
    assert all(secret not in log.read_text() for secret in keys.values())


def test_a_flood_of_bad_keys_is_budgeted_but_accounted_for(tmp_path: Path) -> None:
    """Refusals beyond the budget are not written one by one, but the next entry counts them: none is lost."""
    log = tmp_path / "audit.jsonl"
    sent = 300
    with app_client(tmp_path, audit_log=log) as (client, _):
        for _ in range(sent):
            assert client.get("/analytics/metrics/t1", headers=bearer("stolen-or-guessed")).status_code == 401
        time.sleep(0.2)  # let the budget refill by a few entries
        assert client.get("/analytics/metrics/t1", headers=bearer("stolen-or-guessed")).status_code == 401
    rows = entries(log)
    skipped = sum(r["detail"].get("refusals_not_recorded", 0) for r in rows)
    assert len(rows) < sent  # budgeted
    assert len(rows) + skipped == sent + 1  # ... and accounted for
    assert verify(log)[1] is None


def test_refusals_on_audited_routes_share_the_one_budget(tmp_path: Path) -> None:
    """A bad key on a route that changes state (DELETE /analytics/tenants/...) is budgeted too."""
    log = tmp_path / "audit.jsonl"
    sent = 300
    with app_client(tmp_path, audit_log=log) as (client, _):
        for _ in range(sent):
            assert client.delete("/analytics/tenants/t1", headers=bearer("nope")).status_code == 401
        time.sleep(0.2)  # let the budget refill by a few entries
        assert client.delete("/analytics/tenants/t1", headers=bearer("nope")).status_code == 401
    rows = entries(log)
    assert {(r["action"], r["outcome"]) for r in rows} == {("tenant.erase", "unauthenticated")}
    skipped = sum(r["detail"].get("refusals_not_recorded", 0) for r in rows)
    assert len(rows) < sent
    assert len(rows) + skipped == sent + 1
    assert verify(log)[1] is None


class FullDisk:
    """The audit file as a full disk makes it: every write fails with ENOSPC."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def fileno(self) -> int:
        return int(self.real.fileno())

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_refuses_state_changes_with_503_until_it_can_write(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    with app_client(tmp_path, audit_log=log) as (client, keys):
        audit: AuditLog = client.app.state.audit  # type: ignore[attr-defined]
        admin = bearer(keys["admin"])
        real, audit._fh = audit._fh, FullDisk(audit._fh)  # type: ignore[assignment]
        with capture_logs() as logs:
            first = client.delete("/analytics/tenants/t1", headers=admin)  # done before the write fails
            refused = client.delete("/analytics/tenants/t2", headers=admin)
        assert first.status_code == 200, first.text
        assert refused.status_code == 503
        body = refused.json()
        assert (body["error"], body["field"]) == ("audit_unavailable", "audit_log")
        assert "No space left on device" in body["reason"] and body["request_id"]
        assert any(e["event"].startswith("audit write failed") for e in logs)
        assert any(e["event"].startswith("state change refused") for e in logs)
        event = {"tenant_id": "t1", "user_id": "u1", "event_type": "song_play"}
        assert client.post("/analytics/metrics", json=event, headers=bearer(keys["t1"])).status_code < 300
        audit._fh = real  # space freed
        assert client.delete("/analytics/tenants/t2", headers=admin).status_code == 200
    assert [(e["action"], e.get("detail", {}).get("entries_not_recorded")) for e in entries(log)] == [
        ("audit.resumed", 1),
        ("tenant.erase", None),
    ]
    assert verify(log) == (2, None)


def test_exporter_and_sidecar_defaults_in_one_directory_are_two_chains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--alerts-spec and --state-file side by side: each server writes its own default audit log."""
    spec = tmp_path / "alerts.yaml"
    spec.write_text(yaml.safe_dump(SEED))
    exporter_args = ["--alerts-spec", str(spec), "--rules-out", str(tmp_path / "rules")]
    with FakePrometheusApi(lambda *_: (200, EMPTY)) as fake:
        sidecar = Sidecar(tmp_path, fake.url).start(wait_ready=False)  # nothing to learn: no need to wait
        try:
            with Exporter(tmp_path, extra_args=exporter_args) as exporter:
                for url in (sidecar.url, exporter.url):
                    for _ in range(2):
                        r = requests.delete(f"{url}/analytics/tenants/t1", headers=bearer("nope"), timeout=30)
                        assert r.status_code == 401
        finally:
            sidecar.stop()
    assert not (tmp_path / "audit.jsonl").exists()
    for name in ("exporter-audit.jsonl", "sidecar-audit.jsonl"):
        assert [e["action"] for e in entries(tmp_path / name)] == ["tenant.erase", "tenant.erase"]
        assert "ok: 2 entries, chain intact" in verified(tmp_path / name, capsys)
