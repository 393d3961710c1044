"""The state replicas share, against a real redis-server: several in-process collectors stand for replicas.

HLL accuracy (5k users within 3 standard errors of Redis's 0.81 %), rolling windows and key expiry, the
caps across replicas (atomic in Lua), all-or-nothing batches, erasure, memory per tenant, the shared
token bucket, and what happens without Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tenantpulse.exporters import redis_keys
from tenantpulse.exporters.collector import CollectorConfig, MetricsCollector
from tenantpulse.exporters.events import AppEvent, BusinessFigures, IngestError
from tenantpulse.exporters.pseudonym import key_id
from tenantpulse.exporters.redis_client import RedisConnection
from tenantpulse.exporters.redis_limits import RedisRateLimiter
from tenantpulse.exporters.redis_state import RedisTenantState
from tenantpulse.exporters.settings import ExporterSettings
from tenantpulse.exporters.shared_state import SharedStateUnavailable
from tenantpulse.exporters.stream_worker import StreamWorker
from tenantpulse.kernel.errors import UsageError
from tenantpulse.web.errors import ApiError
from tests.support.exporter import sample_value
from tests.support.ports import free_port
from tests.support.redis import RedisServer, tenant_keys, tenant_memory

REDIS_HLL_ERROR = 0.0081  # Redis's documented standard error (16384 registers)
KEY = b"pseudonym-key-for-redis-state-tests"

Factory = Callable[..., MetricsCollector]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as s:
        yield s


@pytest.fixture
def replica(server: RedisServer) -> Iterator[Factory]:
    """Make collectors ("replicas") on the shared Redis, flushed first."""
    server.client().flushall()
    made: list[RedisConnection] = []

    def make(
        types: int = 50, series: int = 10_000, clock: Callable[[], float] = time.time
    ) -> MetricsCollector:
        conn = RedisConnection(server.url)
        made.append(conn)
        config = CollectorConfig(
            pseudonym_keys={"v1": KEY},
            max_event_types_per_tenant=types,
            max_series_per_tenant=series,
            clock=clock,
        )
        collector = MetricsCollector(config, shared=RedisTenantState(conn, types, series))
        worker = StreamWorker(collector, 10_000)
        collector.exposing = worker.exposing
        WORKERS[collector] = worker
        return collector

    yield make
    for conn in made:
        conn.close()


WORKERS: dict[MetricsCollector, StreamWorker] = {}


def settle(*collectors: MetricsCollector) -> None:
    """Each replica's consumer, run in turn until the ingest stream is empty (no threads: in order)."""
    while sum(WORKERS[c].step(block_ms=None) for c in collectors):
        pass


def users(tenant: str, first: int, n: int, event_type: str = "play") -> list[AppEvent]:
    return [AppEvent(tenant, f"user-{i}", event_type) for i in range(first, first + n)]


def unique(collector: MetricsCollector, tenant: str, window: str = "1h") -> float | None:
    return sample_value(collector.render(tenant=tenant).decode(), "tenantpulse_unique_users", window=window)


def test_unique_users_of_5k_are_within_three_standard_errors(replica: Factory) -> None:
    a, b = replica(), replica()
    for first in range(0, 5000, 500):
        (a if first % 1000 else b).ingest(users("acme", first, 500))
    estimate = unique(a, "acme")
    assert estimate is not None and unique(b, "acme") == estimate  # one shared sketch
    error = abs(estimate - 5000) / 5000
    print(f"5000 users -> {estimate:.0f} ({error:.2%}; Redis standard error 0.81%)")
    assert error <= 3 * REDIS_HLL_ERROR
    assert unique(a, "acme", "1d") == estimate


def test_windows_roll_by_expiring_sub_window_keys(server: RedisServer, replica: Factory) -> None:
    now = time.time()
    earlier = replica(clock=lambda: now - 3700)  # just over an hour ago: outside 1h, inside 1d
    earlier.ingest(users("acme", 0, 300))
    replica().ingest(users("acme", 300, 200))
    current = replica()
    current.ingest(users("acme", 0, 1))  # this replica now holds the tenant
    assert unique(current, "acme", "1h") == pytest.approx(201, abs=3)
    assert unique(current, "acme", "1d") == pytest.approx(500, abs=8)
    r = server.client()
    kid = key_id(KEY)
    hour = r.ttl(redis_keys.users("acme", kid, "1h", int(now // 300)))
    day = r.ttl(redis_keys.users("acme", kid, "1d", int(now // 3600)))
    assert 3300 < hour <= 3660 and 82800 < day <= 86460  # until the window slid past, plus the grace
    assert not r.exists(redis_keys.users("acme", kid, "1h", int((now - 3700) // 300)))  # expired at once


def test_event_type_and_series_caps_hold_across_replicas(replica: Factory) -> None:
    a, b = replica(types=3, series=21), replica(types=3, series=21)
    a.ingest([AppEvent("acme", None, "a"), AppEvent("acme", None, "b")])
    b.ingest([AppEvent("acme", None, "c")])
    with pytest.raises(IngestError) as refused:
        b.ingest([AppEvent("acme", None, "c"), AppEvent("acme", None, "d")])
    assert (refused.value.field, refused.value.reason) == (
        "events[1].event_type",
        "event type limit reached (3)",
    )
    a.ingest([AppEvent("acme", None, "c")])  # held by another replica: no new series
    # 3 counters held and unique users (2 series) added elsewhere: a duration histogram (17) fits what
    # this replica holds (3 + 17 <= 21), not what all replicas hold together (5 + 17).
    b.ingest([AppEvent("acme", "u1", "a")])
    with pytest.raises(IngestError, match="series limit reached"):
        a.ingest([AppEvent("acme", None, "a", {"duration_ms": 5})])
    assert sample_value(b.render(tenant="acme").decode(), "tenantpulse_tenant_series") == 5


def test_a_refused_batch_leaves_no_trace_in_any_tenant(server: RedisServer, replica: Factory) -> None:
    replica(types=1).ingest([AppEvent("full", None, "a")])  # another replica filled the cap
    a = replica(types=1)
    with pytest.raises(IngestError, match="event type limit"):
        a.ingest([AppEvent("other", "u1", "x"), AppEvent("full", "u1", "b")])
    assert tenant_keys(server.client(), "other") == []
    assert a.tenants() == []


def test_business_gauges_show_the_last_value_on_every_replica(replica: Factory) -> None:
    a, b = replica(), replica()
    a.ingest([], [BusinessFigures("acme", revenue=2.0, active_users=1200, conversion_rate=0.5)])
    b.ingest([], [BusinessFigures("acme", revenue=1.0, active_users=900)])
    settle(a, b)
    for c in (a, b):
        body = c.render(tenant="acme").decode()
        assert sample_value(body, "tenantpulse_active_users") == 900
        assert sample_value(body, "tenantpulse_conversion_ratio") == 0.5
        assert sample_value(body, "tenantpulse_revenue_total") == 3.0  # one tenant's totals: everywhere
    # In the whole exposition the shared counters come from the lease holder only: a sum counts once.
    exposed = [sample_value(c.render().decode(), "tenantpulse_revenue_total", tenant="acme") for c in (a, b)]
    assert sorted(exposed, key=str) == [3.0, None]


def test_an_erasure_on_one_replica_clears_the_shared_state_and_the_others(
    server: RedisServer, replica: Factory
) -> None:
    a, b = replica(), replica()
    a.ingest(users("acme", 0, 100))
    b.ingest(users("acme", 100, 100) + [AppEvent("acme", None, "error")])
    a.ingest(users("keep", 0, 10))
    assert a.remove_tenant("acme")["removed"]
    erased = a.erase_shared("acme")
    assert erased is not None and erased["keys"] >= 4 and erased["generation"] == 1
    assert tenant_keys(server.client(), "acme") == []
    assert "acme" not in b.render().decode()  # b dropped its copy at its next read
    assert b.tenants() == []
    b.ingest(users("acme", 0, 5))  # a new start for the tenant
    assert unique(b, "acme") == 5
    assert unique(a, "keep") == 10


def test_memory_per_tenant(server: RedisServer, replica: Factory) -> None:
    """What one tenant costs in Redis: after a 5k-user burst, and with 5k users in every sub-window."""
    replica().ingest(users("burst", 0, 500) + users("burst", 500, 500, "search"))
    for first in range(1000, 5000, 500):
        replica().ingest(users("burst", first, 500))
    burst = tenant_memory(server.client(), "burst")
    now = time.time()
    for age in [300 * k for k in range(12)] + [3600 * h for h in range(24)]:
        c = replica(clock=lambda age=age: now - age)
        for first in range(0, 5000, 500):
            c.ingest(users("steady", first, 500))
    steady = tenant_memory(server.client(), "steady")
    # 12 five-minute and 24 hourly HLLs, and one more five-minute key an hour old in its 60 s grace.
    hlls = [k for k in tenant_keys(server.client(), "steady") if b":u:" in k]
    print(
        f"Redis memory per tenant: 5k-user burst {burst} B; 5k users in each of {len(hlls)} sub-windows {steady} B"
    )
    assert burst < 2 * 15_000 + 1_000  # two dense HLLs (12 KB of registers each) and the small keys
    assert len(hlls) in (36, 37) and steady < len(hlls) * 15_000 + 1_000


def test_the_rate_limit_is_one_bucket_for_all_replicas(server: RedisServer) -> None:
    server.client().flushall()
    a = RedisRateLimiter(RedisConnection(server.url), rate=10.0, burst=100.0)
    b = RedisRateLimiter(RedisConnection(server.url), rate=10.0, burst=100.0)
    a.acquire({"acme": 60})
    with pytest.raises(ApiError) as limited:
        b.acquire({"acme": 50})
    assert limited.value.status == 429 and limited.value.headers["Retry-After"] == "1"
    b.acquire({"acme": 40})
    with pytest.raises(ApiError) as too_big:
        a.acquire({"acme": 101})
    assert too_big.value.status == 413
    b.refund({"acme": 30})
    with pytest.raises(ApiError):  # all tenants' buckets or none: other's stays full
        a.acquire({"other": 50, "acme": 40})
    a.acquire({"other": 100, "acme": 30})


def test_without_redis_nothing_is_applied_and_the_gauge_says_so(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    conn = RedisConnection(url)
    collector = MetricsCollector(
        CollectorConfig(pseudonym_keys={"v1": KEY}), shared=RedisTenantState(conn, 50, 10_000)
    )
    with pytest.raises(SharedStateUnavailable):
        collector.ingest(users("acme", 0, 10))
    body = collector.render().decode()
    assert "tenantpulse_events_total" not in body
    assert sample_value(body, "tenantpulse_exporter_redis_up") == 0
    with pytest.raises(ApiError) as unavailable:
        RedisRateLimiter(conn, 10.0, 100.0).acquire({"acme": 1})
    assert unavailable.value.status == 503 and unavailable.value.headers["Retry-After"] == "1"
    assert not conn.ping()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"redis_url": "redis://127.0.0.1:6379/0"}, "needs --pseudonym-key-file"),
        ({"redis_url": "http://127.0.0.1:6379"}, "--redis-url must be a redis://"),
        (
            {"redis_url": "unix:///run/redis.sock", "redis_cluster": True, "pseudonym_keys": {"v1": KEY}},
            "rediss://",
        ),
        ({"redis_cluster": True}, "--redis-cluster needs --redis-url"),
    ],
)
def test_redis_settings_are_checked_before_start(tmp_path: Path, changes: dict, message: str) -> None:
    current = {"pseudonym_key_current": "v1"} if "pseudonym_keys" in changes else {}
    with pytest.raises(UsageError, match=message):
        ExporterSettings(api_keys_file=tmp_path / "keys.yaml", **current, **changes)


def test_a_key_rotation_counts_each_user_once_over_the_window(replica: Factory) -> None:
    a, b = replica(), replica()
    a.ingest(users("acme", 0, 100))
    for c in (a, b):  # every replica is given the new key (SIGHUP), each at its own moment
        c.rotate_pseudonym_key("v2", b"the-next-pseudonym-key-for-tests")
    b.ingest(users("acme", 50, 100))  # 50 seen before the rotation, 50 new
    assert unique(a, "acme") == pytest.approx(150, abs=2)  # read from v1, which saw the whole window


def test_a_batch_planned_before_an_erasure_is_planned_again(server: RedisServer, replica: Factory) -> None:
    a, b = replica(), replica()
    b.ingest(users("acme", 0, 100) + [AppEvent("acme", None, "error")])
    a.erase_shared("acme")
    b.ingest(users("acme", 0, 3))  # b has not read since: its script finds the generation raised
    settle(a, b)  # b's first batch, still in the stream at the erasure, is skipped
    body = b.render(tenant="acme").decode()
    assert sample_value(body, "tenantpulse_events_total", event_type="play") == 3
    assert sample_value(body, "tenantpulse_events_total", event_type="error") is None
    assert sample_value(body, "tenantpulse_unique_users", window="1h") == 3
    assert server.client().smembers(redis_keys.types("acme")) == {b"play"}
