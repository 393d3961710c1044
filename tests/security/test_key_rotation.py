"""Key rotation in the running exporter process (SIGHUP re-reads the key files).

API key: a new key works and a removed one is refused (401) after the signal, without a restart.
Pseudonym key: after rotating to a new version, the same users are still counted once in the unique-user
windows (the old key keeps feeding the sketches), and new users are added. A bad file changes nothing.
Every reload is in the audit chain. The sidecar re-reads its API keys the same way.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import requests
import yaml

from tenantpulse.conventions import catalog as c
from tenantpulse.security.audit import verify
from tests.support.exporter import Exporter, bearer, sample_value
from tests.support.ports import free_port, wait_until
from tests.support.sidecar import Sidecar

pytestmark = pytest.mark.integration


def unique_users(ex: Exporter) -> float | None:
    return sample_value(ex.metrics(), c.UNIQUE_USERS.name, tenant="t1", window="1h")


def send_users(ex: Exporter, token: str, users: range) -> None:
    events = [{"tenant_id": "t1", "user_id": f"listener-{u}", "event_type": "song_play"} for u in users]
    r = requests.post(
        f"{ex.url}/analytics/metrics", json={"events": events}, headers=bearer(token), timeout=10
    )
    assert r.status_code == 200, r.text


def reload_count(audit: Path) -> int:
    return sum(1 for line in audit.read_text().splitlines() if json.loads(line)["action"] == "keys.reload")


def test_sighup_rotates_api_and_pseudonym_keys(tmp_path: Path) -> None:
    pseudonym = tmp_path / "pseudonym.yaml"
    old_secret, new_secret = "first-secret-0123456789", "second-secret-0123456789"
    pseudonym.write_text(yaml.safe_dump({"current": "v1", "keys": {"v1": old_secret}}))
    audit = tmp_path / "audit.jsonl"
    ex = Exporter(
        tmp_path / "exporter",
        extra_args=["--pseudonym-key-file", str(pseudonym), "--audit-log", str(audit)],
    )
    with ex:
        old_key = ex.keys["t1"]
        send_users(ex, old_key, range(0, 10))
        assert unique_users(ex) == 10

        def hup_and_wait(reloads: int) -> None:
            ex.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
            wait_until(lambda: audit.exists() and reload_count(audit) == reloads, what=f"reload {reloads}")

        # Rotate: a new key for t1 replaces the old one; the pseudonym key moves to v2.
        keys_doc = yaml.safe_load(ex.keys_file.read_text())
        new_key = "rotated-key-for-t1-" + "x" * 16
        for entry in keys_doc["keys"]:
            if entry["id"] == "t1":
                entry["key"] = new_key
        ex.keys_file.write_text(yaml.safe_dump(keys_doc))
        pseudonym.write_text(yaml.safe_dump({"current": "v2", "keys": {"v1": old_secret, "v2": new_secret}}))
        hup_and_wait(1)

        refused = requests.get(f"{ex.url}/analytics/metrics/t1", headers=bearer(old_key), timeout=10)
        assert refused.status_code == 401
        send_users(ex, new_key, range(0, 15))  # 10 known users, now hashed under v2 too, and 5 new ones
        assert unique_users(ex) == 15  # not 25: each user still counted once across the switch

        # A bad pseudonym file (v2's secret changed in place) is refused and nothing changes.
        pseudonym.write_text(yaml.safe_dump({"current": "v2", "keys": {"v2": "a-different-secret-000"}}))
        ex.keys_file.write_text(yaml.safe_dump({"keys": []}))
        hup_and_wait(2)
        send_users(ex, new_key, range(0, 15))
        assert unique_users(ex) == 15

    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    entries = [e for e in entries if e["action"] == "keys.reload"]
    reloads = [(e["actor"], e["outcome"], e.get("detail", {}).get("pseudonym_rotated")) for e in entries]
    assert reloads == [("SIGHUP", "ok", True), ("SIGHUP", "failed", None)]
    assert "changed" in entries[1]["detail"]["reason"]
    assert verify(audit)[1] is None
    assert old_secret not in audit.read_text() and new_secret not in audit.read_text()


def test_sighup_reloads_the_sidecars_api_keys(tmp_path: Path) -> None:
    audit = tmp_path / "sidecar-audit.jsonl"
    dead_prometheus = f"http://127.0.0.1:{free_port()}"  # the ML API answers without Prometheus
    sc = Sidecar(tmp_path, dead_prometheus, extra_args=["--audit-log", str(audit)]).start(wait_ready=False)
    try:
        assert sc.get("/analytics/ml/models", key="t1").status_code == 200
        doc = yaml.safe_load(sc.keys_file.read_text())
        doc["keys"] = [e for e in doc["keys"] if e["id"] != "t1"]
        sc.keys_file.write_text(yaml.safe_dump(doc))
        sc.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        wait_until(lambda: sc.get("/analytics/ml/models", key="t1").status_code == 401, what="t1 key revoked")
        assert sc.get("/analytics/ml/models", key="t2").status_code == 200
    finally:
        sc.stop()
    assert any(json.loads(line)["action"] == "keys.reload" for line in audit.read_text().splitlines())
