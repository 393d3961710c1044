"""Overload, against the real exporter process on loopback.

Ingest is driven as fast as four client threads can go, several times the tenant's rate limit, for a
bounded time. The exporter must answer the excess 429 with ``Retry-After``, keep answering ``/metrics``
and ``/healthz`` (200) throughout, keep its RSS bounded, and count in ``/metrics`` exactly the events it
accepted (2xx) — no more, no fewer. The figures are printed (``pytest -s``) for the README; the capacity
phase measures the sustainable rate of this machine with the limit out of the way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import requests

from tenantpulse.conventions import catalog as c
from tests.support.exporter import Exporter
from tests.support.ports import wait_until

pytestmark = pytest.mark.integration

TENANT = "t1"
BATCH = 50
THREADS = 4
LIMIT = 1_000.0  # events/s for the tenant in the overload phase
FLOOD_SECONDS = 6.0
RSS_CEILING = 400 * 2**20  # generous: the exporter idles near 100 MiB


@dataclass
class Tally:
    accepted: int = 0  # events in 2xx answers
    refused: int = 0  # 429 answers
    other: list[int] = field(default_factory=list)
    retry_after: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def batch(tenant: str, n: int, seq: int) -> dict[str, object]:
    return {
        "events": [
            {"tenant_id": tenant, "user_id": f"u{(seq * n + i) % 997}", "event_type": "song_play"}
            for i in range(n)
        ]
    }


def flood(ex: Exporter, seconds: float, tally: Tally) -> float:
    """Post batches from ``THREADS`` threads until ``seconds`` pass; returns the wall time taken."""
    stop = time.monotonic() + seconds
    headers = ex.auth(TENANT)

    def worker(k: int) -> None:
        session = requests.Session()
        seq = k * 1_000_000
        while time.monotonic() < stop:
            seq += 1
            r = session.post(
                f"{ex.url}/analytics/metrics", json=batch(TENANT, BATCH, seq), headers=headers, timeout=30
            )
            with tally.lock:
                if r.status_code == 200:
                    tally.accepted += r.json()["accepted_events"]
                elif r.status_code == 429:
                    tally.refused += 1
                    tally.retry_after.add(r.headers.get("Retry-After", ""))
                else:
                    tally.other.append(r.status_code)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - started


def counted(ex: Exporter) -> float:
    """The tenant's events as the exporter exposes them (all event types summed)."""
    total = 0.0
    for line in ex.metrics(tenant=TENANT).splitlines():
        if line.startswith(c.EVENTS.name + "{") and f'{c.TENANT}="{TENANT}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def probe(ex: Exporter, stop: threading.Event, results: list[tuple[str, int, float]], rss: list[int]) -> None:
    """Poll /metrics and /healthz (and the process RSS) while the flood runs."""
    proc = psutil.Process(ex.proc.pid)  # type: ignore[union-attr]
    while not stop.is_set():
        for path in ("/healthz", "/metrics"):
            t0 = time.monotonic()
            try:
                status = requests.get(f"{ex.url}{path}", timeout=10).status_code
            except requests.RequestException:
                status = 0
            results.append((path, status, time.monotonic() - t0))
        rss.append(proc.memory_info().rss)
        stop.wait(0.2)


def run_phase(ex: Exporter, seconds: float) -> tuple[Tally, float, list[tuple[str, int, float]], list[int]]:
    tally, results, rss, stop = Tally(), [], [], threading.Event()
    prober = threading.Thread(target=probe, args=(ex, stop, results, rss))
    prober.start()
    try:
        wall = flood(ex, seconds, tally)
    finally:
        stop.set()
        prober.join()
    return tally, wall, results, rss


def settled(ex: Exporter, expected: int) -> Callable[[], bool]:
    return lambda: counted(ex) == expected


def test_overload_sheds_excess_stays_responsive_and_loses_nothing(tmp_path: Path) -> None:
    # Capacity: the same flood with the limit out of the way = the sustainable rate on this machine.
    with Exporter(
        tmp_path / "capacity", extra_args=["--rate-limit", "10000000", "--log-level", "warning"]
    ) as ex:
        tally, wall, _, _ = run_phase(ex, 2.0)
        capacity = tally.accepted / wall
        assert tally.refused == 0 and not tally.other
        wait_until(settled(ex, tally.accepted), timeout=10, what="capacity events counted")

    with Exporter(
        tmp_path / "overload",
        extra_args=["--rate-limit", str(LIMIT), "--rate-burst", str(LIMIT), "--log-level", "warning"],
    ) as ex:
        base_rss = psutil.Process(ex.proc.pid).memory_info().rss  # type: ignore[union-attr]
        tally, wall, probes, rss = run_phase(ex, FLOOD_SECONDS)
        offered = (tally.accepted + tally.refused * BATCH) / wall
        slowest = {p: max(s for q, _, s in probes if q == p) for p in ("/healthz", "/metrics")}
        print(
            f"\nsustainable ingest (no limit, {THREADS} threads x {BATCH}-event batches): {capacity:,.0f} events/s"
            f"\noverload: offered {offered:,.0f} events/s = {offered / LIMIT:.1f}x the {LIMIT:,.0f}/s limit for "
            f"{wall:.1f}s; accepted {tally.accepted} events ({tally.accepted / wall:,.0f}/s), "
            f"{tally.refused} batches 429; slowest /healthz {slowest['/healthz'] * 1000:.0f} ms, "
            f"/metrics {slowest['/metrics'] * 1000:.0f} ms over {len(probes) // 2} probes; "
            f"RSS {base_rss / 2**20:.0f} -> max {max(rss) / 2**20:.0f} MiB"
        )
        assert offered >= 3 * LIMIT, "the client could not overload the exporter; the test proves nothing"
        assert not tally.other, f"unexpected answers: {sorted(set(tally.other))}"
        assert (
            tally.refused > 0
            and tally.retry_after
            and all(v.isdigit() and int(v) >= 1 for v in tally.retry_after)
        )
        # The bucket admits the burst plus the refill rate, never more.
        assert tally.accepted <= LIMIT * (wall + 1) + LIMIT
        assert tally.accepted >= LIMIT * wall * 0.5  # and it does not starve the tenant either
        assert probes and all(status == 200 for _, status, _ in probes), probes
        assert max(rss) < RSS_CEILING
        # Every accepted event is counted, exactly once.
        assert counted(ex) == tally.accepted
