"""Unique users: HLL accuracy, rolling 1h/1d windows (injected clock), and HMAC key rotation that does
not double-count users seen under both keys."""

from __future__ import annotations

import hmac

import pytest

from tenantpulse.exporters.collector import CollectorConfig, MetricsCollector
from tenantpulse.exporters.events import AppEvent
from tenantpulse.exporters.pseudonym import Pseudonymizer

T0 = 1_700_000_000.0  # a whole hour, so sub-windows line up with the arithmetic below


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock) -> MetricsCollector:
    return MetricsCollector(CollectorConfig(pseudonym_keys={"v1": b"first key"}, clock=clock))


def send(col: MetricsCollector, users: range, tenant: str = "t1") -> None:
    events = [AppEvent(tenant, f"user-{u}", "song_play") for u in users]
    for i in range(0, len(events), 2_000):
        col.ingest(events[i : i + 2_000], [])


def unique(col: MetricsCollector, tenant: str = "t1") -> dict[str, float]:
    return col.snapshot(tenant)["unique_users"]


def test_ten_thousand_users_within_three_percent() -> None:
    clock = Clock()
    col = make(clock)
    send(col, range(10_000))
    send(col, range(5_000))  # repeats do not count again
    send(col, range(2_000), tenant="t2")
    got = unique(col)
    assert got["1h"] == pytest.approx(10_000, rel=0.03)
    assert got["1d"] == pytest.approx(10_000, rel=0.03)
    assert unique(col, "t2")["1h"] == pytest.approx(2_000, rel=0.03)


def test_windows_roll_off() -> None:
    clock = Clock()
    col = make(clock)
    send(col, range(100))
    clock.now += 30 * 60
    send(col, range(100, 150))
    assert unique(col) == {"1h": 150, "1d": 150}
    clock.now = T0 + 3600  # the first 5-minute sub-window has left the hour
    assert unique(col) == {"1h": 50, "1d": 150}
    clock.now = T0 + 3 * 3600
    assert unique(col) == {"1h": 0, "1d": 150}
    clock.now = T0 + 86_400 + 3600  # both first-hour sub-windows have left the day
    assert unique(col) == {"1h": 0, "1d": 0}


def test_key_rotation_does_not_double_count() -> None:
    clock = Clock()
    col = make(clock)
    send(col, range(1_000))
    clock.now += 600
    col.rotate_pseudonym_key("v2", b"second key")
    send(col, range(1_000))  # the same users, now pseudonymised under v2 as well
    send(col, range(1_000, 1_100))
    got = unique(col)
    assert got["1h"] == pytest.approx(1_100, rel=0.03)
    assert got["1d"] == pytest.approx(1_100, rel=0.03)

    clock.now += 3600  # v2 has now seen a whole hour: the hour is read from v2, the day still from v1
    send(col, range(500))
    got = unique(col)
    assert got["1h"] == pytest.approx(500, rel=0.03)
    assert got["1d"] == pytest.approx(1_100, rel=0.03)

    clock.now = T0 + 600 + 86_400 + 1  # overlap over: v1 and its sketches are gone
    send(col, range(300))
    # the day now holds v2's sub-windows from T0+1h on: the 500 users, then these 300 of them
    assert unique(col) == {"1h": pytest.approx(300, rel=0.03), "1d": pytest.approx(500, rel=0.03)}
    assert [v.version for v in col._pseudo.active(clock.now)] == ["v2"]
    assert set(col._tenants["t1"].users.by_version) == {"v2"}


def test_rotation_refuses_reused_version_or_empty_key() -> None:
    col = make(Clock())
    with pytest.raises(ValueError, match="already used"):
        col.rotate_pseudonym_key("v1", b"x")
    with pytest.raises(ValueError, match="empty"):
        col.rotate_pseudonym_key("v3", b"")


def test_pseudonyms_are_keyed() -> None:
    a, b = Pseudonymizer.pseudonyms(b"k1", ["alice", "bob"])
    assert a == Pseudonymizer.pseudonyms(b"k1", ["alice"])[0]
    assert a != Pseudonymizer.pseudonyms(b"k2", ["alice"])[0]
    assert a != b
    digest = hmac.digest(b"k1", b"alice", "sha256")
    assert a == int.from_bytes(digest[:8], "big")  # plain HMAC-SHA256, reproducible by any tool
