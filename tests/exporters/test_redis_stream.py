"""Durable ingest through a real redis-server's streams, with in-process collectors as replicas and their
consumers stepped by hand: exactly-once application when a replica dies holding entries, direct
producers' entries validated (refusals in the dead letters with field and reason), idempotency keys on
the HTTP ingest, and erasure of entries still waiting.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tenantpulse.exporters import redis_keys
from tenantpulse.exporters.collector import CollectorConfig, MetricsCollector
from tenantpulse.exporters.events import AppEvent, BusinessFigures
from tenantpulse.exporters.redis_client import RedisConnection
from tenantpulse.exporters.redis_state import RedisTenantState
from tenantpulse.exporters.redis_stream import RedisStreams
from tenantpulse.exporters.stream_worker import StreamWorker
from tests.support.exporter import app_client, sample_value
from tests.support.redis import RedisServer

KEY = b"pseudonym-key-for-redis-stream-tests"
Replica = tuple[MetricsCollector, StreamWorker]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as s:
        yield s


@pytest.fixture
def replica(server: RedisServer) -> Iterator[Callable[..., Replica]]:
    server.client().flushall()
    made: list[RedisConnection] = []

    def make(types: int = 50, claim_idle_ms: int = 5_000) -> Replica:
        conn = RedisConnection(server.url)
        made.append(conn)
        collector = MetricsCollector(
            CollectorConfig(pseudonym_keys={"v1": KEY}, max_event_types_per_tenant=types),
            shared=RedisTenantState(conn, types, 10_000),
        )
        worker = StreamWorker(collector, 10_000)
        worker.source = RedisStreams(conn, worker.consumer, claim_idle_ms=claim_idle_ms)
        collector.exposing = worker.exposing
        return collector, worker

    yield make
    for conn in made:
        conn.close()


def events(collector: MetricsCollector, tenant: str, event_type: str = "play") -> float | None:
    return sample_value(
        collector.render(tenant=tenant).decode(), "tenantpulse_events_total", event_type=event_type
    )


def drain(*workers: StreamWorker) -> None:
    while sum(w.step(block_ms=None) for w in workers):
        pass


def test_entries_a_dead_replica_held_are_claimed_and_counted_once(
    server: RedisServer, replica: Callable
) -> None:
    (a, dying), (b, survivor) = replica(), replica(claim_idle_ms=1)
    for n in (3, 4, 5):
        a.ingest([AppEvent("acme", None, "play")] * n)
    dying.source.ensure_group()
    held = dying.source.read(10, None)  # read, then the replica dies before applying them
    assert len(held) == 3 and survivor.source.read(10, None) == []  # each entry went to one consumer
    assert events(b, "acme") is None
    survivor._renewed = -1e9  # due for its periodic claim at once
    assert survivor.step(block_ms=None) == 3
    assert events(b, "acme") == 12
    dying.drain(held)  # the first replica was only stalled: it finishes late, and counts nothing
    assert events(a, "acme") == 12
    r = server.client()
    assert r.xlen(redis_keys.stream()) == 0  # applied entries are deleted
    assert r.xpending(redis_keys.stream(), "tenantpulse")["pending"] == 0


def test_direct_producers_get_the_http_validation_and_refusals_are_dead_lettered(
    server: RedisServer, replica: Callable
) -> None:
    collector, worker = replica(types=2)
    r = server.client()
    valid = [
        {"body": json.dumps({"events": [{"tenant_id": "acme", "user_id": "u1", "event_type": "play"}] * 3})},
        {
            "tenant_id": "acme",
            "event_type": "play",
            "user_id": "u2",
            "metadata": json.dumps({"duration_ms": 20}),
        },
        {"body": json.dumps({"tenant_id": "acme", "revenue": 2.5})},
    ]
    refused = [
        ({"body": "{not json"}, "body"),
        ({"tenant_id": "bad tenant!", "event_type": "play"}, "tenant_id"),
        (
            {
                "body": json.dumps(
                    {"events": [{"tenant_id": "acme", "event_type": "play", "metadata": {"duration_ms": -1}}]}
                )
            },
            "events[0].metadata.duration_ms",
        ),
        ({"tenant_id": "acme", "event_type": "play", "metadata": "[1"}, "metadata"),
        ({"unrelated": "x"}, "body"),
        (
            {
                "body": json.dumps(
                    {"events": [{"tenant_id": "acme", "event_type": t} for t in ("skip", "seek")]}
                )
            },
            "events[1].event_type",
        ),
    ]
    ids = {r.xadd(redis_keys.inbox(), fields).decode(): None for fields in valid}
    refused_ids = {r.xadd(redis_keys.inbox(), fields).decode(): field for fields, field in refused}
    drain(worker)
    assert events(collector, "acme") == 4
    assert events(collector, "acme", "skip") is None  # a refused batch leaves no trace
    body = collector.render(tenant="acme").decode()
    assert sample_value(body, "tenantpulse_revenue_total") == 2.5
    assert sample_value(body, "tenantpulse_event_duration_seconds_count", event_type="play") == 1
    assert sample_value(body, "tenantpulse_unique_users", window="1h") == 2
    dead = {f[b"entry"].decode(): f for _, f in r.xrange(redis_keys.dead_letters())}
    assert set(dead) == set(refused_ids) and not set(dead) & set(ids)
    for entry, field in refused_ids.items():
        assert dead[entry][b"field"].decode() == field and dead[entry][b"reason"]
    assert dead[next(iter(refused_ids))][b"source"] == redis_keys.inbox().encode()
    assert b"limit" in dead[list(refused_ids)[-1]][b"reason"]
    assert r.xlen(redis_keys.inbox()) == 0  # valid and refused entries alike leave the inbox


def test_an_erasure_skips_the_tenants_entries_still_waiting(server: RedisServer, replica: Callable) -> None:
    collector, worker = replica()
    collector.ingest([AppEvent("acme", None, "play")] * 5 + [AppEvent("keep", None, "play")])
    drain(worker)
    collector.ingest([AppEvent("acme", None, "play")] * 7 + [AppEvent("keep", None, "play")])  # waiting
    collector.remove_tenant("acme")
    erased = collector.erase_shared("acme")
    assert erased is not None and not server.client().exists(redis_keys.counters("acme"))
    drain(worker)
    assert not server.client().exists(redis_keys.counters("acme"))  # the waiting batch was not applied
    assert events(collector, "keep") == 2
    collector.ingest([AppEvent("acme", None, "play")])  # a new start for the tenant
    drain(worker)
    assert events(collector, "acme") == 1


def test_idempotency_keys_count_a_batch_sent_again_once(server: RedisServer, tmp_path: Path) -> None:
    server.client().flushall()
    settings = {"redis_url": server.url, "pseudonym_keys": {"v1": KEY}, "pseudonym_key_current": "v1"}
    with app_client(tmp_path, **settings) as (client, keys):

        def post(body: dict, key: str, idem: str | None) -> int:
            headers = {"Authorization": f"Bearer {keys[key]}"}
            if idem is not None:
                headers["Idempotency-Key"] = idem
            r = client.post("/analytics/metrics", json=body, headers=headers)
            assert r.status_code in (200, 422), r.text
            return r.status_code if r.status_code == 200 else r.json()["field"]

        batch = {"events": [{"tenant_id": "t1", "event_type": "play"}] * 10}
        assert post(batch, "t1", "batch-0001") == 200
        assert post(batch, "t1", "batch-0001") == 200  # the answer was lost: sent again
        assert post({"events": batch["events"][:3]}, "t1", "batch-0001") == "Idempotency-Key"
        assert post(batch, "t1", "bad key with spaces") == "Idempotency-Key"
        assert (
            post({"events": [{"tenant_id": "t2", "event_type": "play"}]}, "t2", "batch-0001") == 200
        )  # per key
        assert post(batch, "t1", None) == 200

        def counted(tenant: str) -> float | None:
            return sample_value(
                client.get("/metrics", params={"tenant": tenant}).text, "tenantpulse_events_total"
            )

        from tests.support.ports import wait_until

        wait_until(lambda: counted("t1") == 20 and counted("t2") == 1, timeout=20, what="applied")
        assert client.get("/analytics/metrics/t1", headers={"Authorization": f"Bearer {keys['t1']}"}).json()[
            "events"
        ] == {"play": 20.0}


def test_memory_of_a_tenants_counters(server: RedisServer, replica: Callable) -> None:
    """10 event types with durations and revenue: only buckets that were hit are held (a HASH field each)."""
    collector, worker = replica()
    batch = [AppEvent("acme", None, f"type{i}", {"duration_ms": 10 ** (i % 5)}) for i in range(10)] * 50
    collector.ingest(batch, [BusinessFigures("acme", revenue=3.0)])
    drain(worker)
    r = server.client()
    fields = r.hlen(redis_keys.counters("acme"))
    used = int(r.memory_usage(redis_keys.counters("acme"), samples=0))
    print(f"counters of one tenant: {fields} fields, {used} bytes in Redis")
    assert fields == 10 + 10 + 10 + 1  # per type: its count, the one bucket hit, the sum; and revenue
    assert used < 64 * fields + 1_000


def test_every_replica_reads_a_tenant_another_one_took(replica: Callable) -> None:
    (a, worker), (b, _) = replica(), replica()
    a.ingest([AppEvent("acme", None, "play")] * 4, [BusinessFigures("acme", revenue=1.5)])
    drain(worker)
    assert "acme" in b.tenants()  # b never saw the tenant: its counters are in Redis
    snap = b.snapshot("acme")
    assert snap["events"] == {"play": 4.0} and snap["revenue"] == 1.5
    assert b.aggregated()["events_total"] == 4
    with pytest.raises(KeyError):
        b.snapshot("nobody")
