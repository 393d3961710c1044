"""Nothing acknowledged is lost: three real exporter replicas on one real redis-server (AOF), scraped by a
real Prometheus, under a sustained flood; the replica exposing the counters is SIGKILLed in the middle
and restarted. Per tenant, what Prometheus counts with the documented query equals exactly the events
answered 2xx: clients retry a failed batch with its idempotency key, as a client losing an answer does.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from typing import Any

import pytest
import requests

from tenantpulse.conventions import catalog as c
from tenantpulse.exporters import redis_keys
from tests.exporters.test_redis_replicas import FAST
from tests.support.exporter import Replicas
from tests.support.ports import wait_until
from tests.support.prometheus import Prometheus
from tests.support.redis import RedisServer

pytestmark = pytest.mark.integration

BATCH = 500
TENANTS = ("t1", "t2")
DOCUMENTED_QUERY = f"sum by ({c.TENANT}) ({c.EVENTS.name})"  # docs/exporter.md, "Durable ingest"


class Flood:
    """One thread per tenant posting 500-event batches round-robin over the replicas; a batch that gets
    no 2xx (connection refused or reset, 503) goes to the next replica with the same idempotency key."""

    def __init__(self, replicas: Replicas) -> None:
        self.replicas = replicas.replicas
        self.acked = dict.fromkeys(TENANTS, 0)
        self.failures = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(t,)) for t in TENANTS]

    def _run(self, tenant: str) -> None:
        session = requests.Session()
        n = 0
        while not self.stop.is_set():
            body = {
                "events": [
                    {"tenant_id": tenant, "user_id": f"u{i % 97}", "event_type": ("play", "skip")[i % 2]}
                    for i in range(BATCH)
                ]
            }
            headers = {"Idempotency-Key": uuid.uuid4().hex}
            while True:
                replica = self.replicas[n % len(self.replicas)]
                n += 1
                try:
                    r = session.post(
                        f"{replica.url}/analytics/metrics",
                        json=body,
                        headers={**headers, **replica.auth(tenant)},
                        timeout=10,
                    )
                except requests.RequestException:
                    r = None
                if r is not None and r.status_code == 200:
                    self.acked[tenant] += BATCH
                    break
                assert r is None or r.status_code == 503, r.text
                self.failures += 1
                time.sleep(0.01)

    def __enter__(self) -> Flood:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


def exposer(server: RedisServer, replicas: Replicas) -> int:
    """Which replica holds the exposer lease (its consumer name carries its pid)."""
    holder = server.client().get(redis_keys.exposer())
    assert holder is not None
    pid = int(holder.decode().rsplit("-", 2)[1])
    return next(i for i, r in enumerate(replicas.replicas) if r.proc is not None and r.proc.pid == pid)


def test_sigkill_of_the_exposing_replica_under_load_loses_nothing_and_counts_nothing_twice(
    tmp_path: Any,
) -> None:
    with (
        RedisServer(tmp_path / "redis", aof=True) as server,
        Replicas(tmp_path, 3, server.url, extra_args=FAST) as rs,
        Prometheus(tmp_path, [rs.scrape_config()]) as prom,
    ):
        wait_until(lambda: server.client().exists(redis_keys.exposer()), timeout=30, what="an exposer")
        with Flood(rs) as flood:
            wait_until(lambda: min(flood.acked.values()) >= 20 * BATCH, timeout=60, what="load")
            victim = exposer(server, rs)
            rs.replicas[victim].child.signal(signal.SIGKILL)
            rs.replicas[victim].proc.wait(10)  # type: ignore[union-attr]
            before = dict(flood.acked)
            wait_until(
                lambda: min(flood.acked[t] - before[t] for t in TENANTS) >= 10 * BATCH,
                timeout=60,
                what="load on",
            )
            rs.replicas[victim].start()  # the same port, a new process: a new consumer
            wait_until(
                lambda: min(flood.acked[t] - before[t] for t in TENANTS) >= 20 * BATCH,
                timeout=60,
                what="load after",
            )
        acked = flood.acked
        print(f"acknowledged {acked}, {flood.failures} failed attempts retried; exposer was replica {victim}")
        assert flood.failures > 0  # the kill really hit requests in flight or refused connections

        def counted() -> dict[str, float | None]:
            return {t: prom.value(DOCUMENTED_QUERY, tenant=t) for t in TENANTS}

        def exact() -> bool:
            now = counted()
            for t in TENANTS:
                assert (now[t] or 0) <= acked[t], f"{t}: {now[t]} counted for {acked[t]} acknowledged"
            return now == {t: float(acked[t]) for t in TENANTS}

        wait_until(exact, timeout=90, what="Prometheus counting every acknowledged event")
        r = server.client()
        assert (
            r.xlen(redis_keys.stream()) == 0
            and r.xpending(redis_keys.stream(), "tenantpulse")["pending"] == 0
        )
        assert r.xlen(redis_keys.dead_letters()) == 0
        lost = {t: acked[t] - (counted()[t] or 0) for t in TENANTS}
        print(f"Prometheus {counted()}: lost {lost}, counted twice 0")
