"""Three real exporter replicas sharing one real redis-server, behind a round-robin client.

Unique users as Prometheus computes them over the three (the indicator's documented query), the rate
limit held by all of them together, one erasure for all, and a Redis outage under load: 503s and no
2xx for an event that was not stored, /readyz failing, /metrics serving, recovery without a restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import requests

from tenantpulse.conventions import catalog as c
from tenantpulse.conventions import indicators
from tenantpulse.exporters import redis_keys
from tenantpulse.exporters.pseudonym import Pseudonymizer
from tests.support.exporter import Replicas, sample_value
from tests.support.ports import wait_until
from tests.support.prometheus import Prometheus
from tests.support.redis import RedisServer, tenant_keys

pytestmark = pytest.mark.integration

EVENTS_PER_TENANT = 100_000
USERS_PER_TENANT = 5_000
BATCH = 500
REDIS_HLL_ERROR = 0.0081
FAST = ["--rate-limit", "1e9", "--log-level", "warning"]


def counted(replicas: Replicas, tenant: str) -> float:
    """The tenant's events as a sum over every replica's /metrics: the shared counters, from the one
    replica that exposes them."""
    return sum(sample_value(m, c.EVENTS.name, tenant=tenant) or 0 for m in replicas.metrics())


def settled(replicas: Replicas, tenant: str, expected: float) -> None:
    """Wait until the consumers applied the stream (asserting it never goes past ``expected``)."""

    def done() -> bool:
        n = counted(replicas, tenant)
        assert n <= expected
        return n == expected

    wait_until(done, timeout=30, what=f"{expected:.0f} events of {tenant} counted")


def event_batches(tenants: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """100k events per tenant from 5k users, 500 a batch, the tenants' batches interleaved."""
    out = []
    for first in range(0, EVENTS_PER_TENANT, BATCH):
        for t in tenants:
            events = [
                {
                    "tenant_id": t,
                    "user_id": f"{t}-user-{i % USERS_PER_TENANT}",
                    "event_type": ("play", "search", "skip")[i % 3],
                }
                for i in range(first, first + BATCH)
            ]
            out.append((t, {"events": events}))
    return out


def reference_count(client: Any, key: bytes, tenant: str) -> int:
    """PFCOUNT of one HLL fed the tenant's 5k pseudonyms directly: what one sketch says."""
    ids = [f"{tenant}-user-{i}" for i in range(USERS_PER_TENANT)]
    scratch = f"reference:{{{tenant}}}"
    client.delete(scratch)
    client.pfadd(scratch, *Pseudonymizer.digests(key, ids))
    count = int(client.pfcount(scratch))
    client.delete(scratch)
    return count


def check_unique_users(replicas: Replicas, redis_client: Any, workdir: Path) -> None:
    """Drive the 100k-event load per tenant; Prometheus's view of events and unique users."""
    tenants = ("t1", "t2", "t3")
    for tenant, body in event_batches(tenants):
        r = replicas.post(body, key=tenant)
        assert r.status_code == 200, r.text
    workdir.mkdir(parents=True, exist_ok=True)
    with Prometheus(workdir, [replicas.scrape_config()]) as prom:
        events = f"sum by ({c.TENANT}) ({c.EVENTS.name})"
        scraped = f"count by ({c.TENANT}) ({c.UNIQUE_USERS.selector(window='1h')})"
        wait_until(
            lambda: all(
                prom.value(events, tenant=t) == EVENTS_PER_TENANT and prom.value(scraped, tenant=t) == 3
                for t in tenants
            ),
            timeout=60,
            what="the stream applied and every replica scraped since",
        )
        query = indicators.get(
            "unique_users_1h"
        ).promql()  # max by (tenant): each replica shows the shared value
        per_replica = f'count by ({c.TENANT}) (count_values by ({c.TENANT}) ("v", {c.UNIQUE_USERS.selector(window="1h")}))'
        for t in tenants:
            estimate = prom.value(query, tenant=t)
            assert estimate is not None
            error = abs(estimate - USERS_PER_TENANT) / USERS_PER_TENANT
            print(f"{t}: {USERS_PER_TENANT} users over 3 replicas -> {estimate:.0f} ({error:.2%})")
            assert estimate == reference_count(
                redis_client, replicas.pseudonym_key, t
            )  # one sketch, no more error
            assert error <= REDIS_HLL_ERROR
            assert prom.value(per_replica, tenant=t) == 1  # the three replicas expose one value
            assert (
                prom.value(f"sum by (tenant) ({c.UNIQUE_USERS.selector(window='1h')})", tenant=t)
                == 3 * estimate
            )


def test_unique_users_and_counters_over_three_replicas(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server, Replicas(tmp_path, 3, server.url, extra_args=FAST) as rs:
        check_unique_users(rs, server.client(), tmp_path / "prom")


def test_a_flood_at_five_times_the_rate_is_held_to_the_rate_across_replicas(tmp_path: Path) -> None:
    rate, burst, seconds, batch = 1000, 1000, 6.0, 100
    args = ["--rate-limit", str(rate), "--rate-burst", str(burst), "--log-level", "warning"]
    with RedisServer(tmp_path / "redis") as server, Replicas(tmp_path, 3, server.url, extra_args=args) as rs:
        body = {"events": [{"tenant_id": "t1", "event_type": "play"} for _ in range(batch)]}
        interval = batch / (5 * rate)  # 5x the rate, spread over the three replicas in turn
        accepted = limited = 0
        start = time.monotonic()
        n = 0
        while (now := time.monotonic()) - start < seconds:
            time.sleep(max(0.0, start + n * interval - now))
            r = rs.post(body, key="t1")
            n += 1
            if r.status_code == 200:
                accepted += batch
            else:
                assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1, r.text
                limited += 1
        elapsed = time.monotonic() - start
        allowed = burst + rate * elapsed
        offered = n * batch
        print(
            f"offered {offered / elapsed:.0f} events/s for {elapsed:.1f}s: admitted {accepted}, limit {allowed:.0f}"
        )
        assert offered >= 4 * rate * elapsed  # the flood really was ~5x
        assert abs(accepted - allowed) <= 0.1 * allowed
        settled(rs, "t1", accepted)


def test_one_erasure_clears_the_tenant_from_redis_and_every_replica(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server, Replicas(tmp_path, 3, server.url, extra_args=FAST) as rs:
        for i in range(6):
            for t in ("t1", "t2"):
                users = [{"tenant_id": t, "user_id": f"u{i}-{j}", "event_type": "play"} for j in range(50)]
                assert rs.post({"events": users, "business": [{"tenant_id": t, "active_users": 7}]}, key=t).ok
        assert all("t1" in m for m in rs.metrics())
        wait_until(lambda: server.client().exists(redis_keys.counters("t1")), timeout=30, what="counted")
        held = len(tenant_keys(server.client(), "t1")) + 1  # and the tenant's shared counters
        first = rs.replicas[0]
        r = requests.delete(f"{first.url}/analytics/tenants/t1", headers=first.auth("admin"), timeout=30)
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["redis"]["status"] == "removed" and report["redis"]["detail"]["keys"] == held >= 5
        assert "redis" not in report["pending"]
        assert len(report["redis"]["detail"]["replicas"]) == 3  # the live replicas, which drop their copy
        assert tenant_keys(server.client(), "t1") == []
        assert not server.client().exists(redis_keys.counters("t1"))
        for m in rs.metrics():  # each replica dropped its copy at this read
            assert 'tenant="t1"' not in m
            assert sample_value(m, c.UNIQUE_USERS.name, tenant="t2", window="1h") == pytest.approx(300, abs=6)
        assert len(tenant_keys(server.client(), "t2")) >= 5


def test_redis_stopped_under_load_then_back_without_restarting_the_exporters(tmp_path: Path) -> None:
    """No 2xx for an event that was not stored: the replicas' counters equal the accepted events, and
    every accepted user is in the shared sketch; the refused batches are sent again after recovery."""
    with (
        RedisServer(tmp_path / "redis", aof=True) as server,
        Replicas(tmp_path, 3, server.url, extra_args=FAST) as rs,
    ):
        accepted: list[list[str]] = []
        refused: list[dict[str, Any]] = []
        statuses: list[int] = []
        stop = threading.Event()

        def load() -> None:
            i = 0
            while not stop.is_set():
                users = [f"user-{i}-{j}" for j in range(100)]
                body = {"events": [{"tenant_id": "t1", "user_id": u, "event_type": "play"} for u in users]}
                r = rs.post(body, key="t1")
                statuses.append(r.status_code)
                if r.status_code == 200:
                    accepted.append(users)
                else:
                    assert r.status_code == 503, r.text
                    assert r.headers["Retry-After"] == "1" and r.json()["error"] == "unavailable"
                    refused.append(body)
                i += 1
                time.sleep(0.01)

        loader = threading.Thread(target=load)
        loader.start()
        try:
            wait_until(lambda: len(accepted) >= 20, timeout=30, what="load accepted")
            server.stop()
            wait_until(lambda: len(refused) >= 10, timeout=30, what="503s while Redis is down")
            for replica in rs.replicas:
                ready = requests.get(f"{replica.url}/readyz", timeout=10)
                assert ready.status_code == 503 and ready.json()["status"] == "redis_unreachable"
                body = replica.metrics()  # keeps serving, and says why its shared values are stale
                assert sample_value(body, c.REDIS_UP.name) == 0
            server.start()
            seen = len(statuses)
            wait_until(lambda: 200 in statuses[seen:], timeout=30, what="ingest accepted again")
        finally:
            stop.set()
            loader.join(30)
        for replica in rs.replicas:
            wait_until(
                lambda r=replica: requests.get(f"{r.url}/readyz", timeout=5).ok, timeout=30, what="ready"
            )
            assert sample_value(replica.metrics(), c.REDIS_UP.name) == 1
        settled(rs, "t1", 100 * len(accepted))
        r = server.client()
        keys = [k for k in tenant_keys(r, "t1") if b":u:" in k and b":1d:" in k]
        r.pfmerge("check:{t1}", *keys)
        pseudonyms = Pseudonymizer.digests(rs.pseudonym_key, [u for batch in accepted for u in batch])
        assert r.pfadd("check:{t1}", *pseudonyms) == 0  # every accepted user was already counted
        for body in refused:  # what a client does with a 503
            assert rs.post(body, key="t1").status_code == 200
        settled(rs, "t1", 100 * (len(accepted) + len(refused)))
