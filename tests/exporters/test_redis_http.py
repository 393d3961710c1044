"""The exporter app with ``--redis-url`` in-process: its answers with Redis and without it, and the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tenantpulse.cli import main
from tenantpulse.conventions import catalog as c
from tests.support.exporter import app_client, bearer, sample_value, write_keys_file, write_pseudonym_key_file
from tests.support.ports import free_port
from tests.support.redis import RedisServer, tenant_keys

PSEUDONYMS = {"pseudonym_keys": {"v1": b"pseudonym-key-for-http-tests"}, "pseudonym_key_current": "v1"}
BATCH = {
    "events": [{"tenant_id": "t1", "user_id": f"u{i}", "event_type": "play"} for i in range(40)],
    "business": [{"tenant_id": "t1", "active_users": 12}],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as s:
        yield s


def test_with_redis_the_app_ingests_reads_and_erases_through_it(tmp_path: Path, server: RedisServer) -> None:
    with app_client(tmp_path, redis_url=server.url, **PSEUDONYMS) as (client, keys):
        assert client.get("/readyz").json() == {"status": "ok"}
        r = client.post("/analytics/metrics", json=BATCH, headers=bearer(keys["t1"]))
        assert r.status_code == 200, r.text
        body = client.get("/metrics").text
        assert sample_value(body, c.UNIQUE_USERS.name, tenant="t1", window="1h") == 40
        assert sample_value(body, c.REDIS_UP.name) == 1
        snapshot = client.get("/analytics/metrics/t1", headers=bearer(keys["t1"])).json()
        assert snapshot["unique_users"] == {"1h": 40.0, "1d": 40.0} and snapshot["active_users"] == 12
        assert (
            client.get("/analytics/metrics/aggregated", headers=bearer(keys["admin"])).json()["tenants"] == 1
        )
        report = client.delete("/analytics/tenants/t1", headers=bearer(keys["admin"])).json()
        assert report["redis"]["status"] == "removed" and report["exporter"]["status"] == "removed"
        assert tenant_keys(server.client(), "t1") == []
        again = client.delete("/analytics/tenants/t1", headers=bearer(keys["admin"])).json()
        assert again["redis"]["status"] == "nothing_held"


def test_without_redis_ingest_is_503_and_nothing_is_stored(tmp_path: Path) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with app_client(tmp_path, redis_url=dead, **PSEUDONYMS) as (client, keys):
        r = client.post("/analytics/metrics", json=BATCH, headers=bearer(keys["t1"]))
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert r.json()["error"] == "unavailable" and "nothing was stored" in r.json()["reason"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json() == {"status": "redis_unreachable"}
        body = client.get("/metrics").text
        assert sample_value(body, c.REDIS_UP.name) == 0
        assert sample_value(body, c.EVENTS.name, tenant="t1") is None
        assert sample_value(body, c.INGEST_REJECTED.name, tenant="t1", reason="unavailable") == 1
        erased = client.delete("/analytics/tenants/t1", headers=bearer(keys["admin"])).json()
        assert erased["redis"]["status"] == "failed" and "redis" in erased["pending"]


def test_check_names_the_redis_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.yaml"
    write_keys_file(keys, ["t1"])
    pk = write_pseudonym_key_file(tmp_path / "pk.yaml", "a-pseudonym-key-of-16+-chars")
    url = "redis://:s3cret@10.0.0.7:6380/0"  # not contacted by --check
    args = ["exporter", "--api-keys", str(keys), "--pseudonym-key-file", str(pk), "--redis-url", url]
    assert main([*args, "--redis-cluster", "--check"]) == 0
    out = capsys.readouterr().out
    assert "shared state in Redis Cluster redis://10.0.0.7:6380" in out and "s3cret" not in out
    assert main(["exporter", "--api-keys", str(keys), "--redis-url", url, "--check"]) == 2
    assert "--redis-url needs --pseudonym-key-file" in capsys.readouterr().err
