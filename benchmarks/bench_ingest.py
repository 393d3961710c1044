"""In-process batch ingest (``MetricsCollector.ingest``) vs prometheus_client, events per second.

Baseline: for each event, ``Counter.labels(tenant, event_type).inc()`` (plus ``Histogram.observe`` for
the duration case) on a fresh registry, the per-event path an exporter written on prometheus_client
takes. Ours: batches of 1,000 pre-built AppEvents, validated whole, then applied. The "users" cases also
pseudonymise every user id (HMAC-SHA256) and feed two HLL sketches, work the baseline does not do.
Batches come from one tenant each (as through the HTTP API, where a key usually belongs to one
tenant), and, as a worst case, interleaved so every event of a batch is a different (tenant, type).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

from tenantpulse.conventions import catalog
from tenantpulse.exporters.collector import CollectorConfig, MetricsCollector
from tenantpulse.exporters.events import AppEvent

EVENTS = 100_000
BATCH = 1_000
TENANTS = 100
TYPES = 20


def make_events(users: bool, durations: bool, per_tenant: bool) -> list[AppEvent]:
    def tenant(i: int) -> int:
        return (i // BATCH) % TENANTS if per_tenant else i % TENANTS

    return [
        AppEvent(
            f"tenant-{tenant(i):03d}",
            f"user-{i % 50_000}" if users else None,
            f"event_{(i // TENANTS) % TYPES:02d}",
            {"duration_ms": float(i % 3000)} if durations else {},
        )
        for i in range(EVENTS)
    ]


def baseline(events: list[AppEvent], durations: bool) -> float:
    registry = CollectorRegistry()
    counter = Counter(catalog.EVENTS.family, catalog.EVENTS.help, catalog.EVENTS.labels, registry=registry)
    hist = Histogram(
        catalog.EVENT_DURATION.name,
        catalog.EVENT_DURATION.help,
        catalog.EVENT_DURATION.labels,
        buckets=catalog.EVENT_DURATION.buckets,
        registry=registry,
    )
    t0 = time.perf_counter()
    for e in events:
        counter.labels(e.tenant_id, e.event_type).inc()
        if durations:
            hist.labels(e.tenant_id, e.event_type).observe(e.metadata["duration_ms"] / 1000)
    return time.perf_counter() - t0


def ours(events: list[AppEvent]) -> float:
    collector = MetricsCollector(CollectorConfig(pseudonym_keys={"bench": b"bench key"}))
    ingest: Callable = collector.ingest
    batches = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
    t0 = time.perf_counter()
    for batch in batches:
        ingest(batch, ())
    return time.perf_counter() - t0


def main() -> None:
    print(f"{EVENTS:,} events, {TENANTS} tenants x {TYPES} event types, batches of {BATCH:,}")
    cases = [
        ("counters only", False, False, True),
        ("with durations", False, True, True),
        ("with durations + user ids", True, True, True),
        ("same, interleaved tenants", True, True, False),
    ]
    for name, users, durations, per_tenant in cases:
        events = make_events(users, durations, per_tenant)
        base = min(baseline(events, durations) for _ in range(2))
        mine = min(ours(events) for _ in range(2))
        print(
            f"{name:28s} prometheus_client {EVENTS / base:>10,.0f} ev/s   "
            f"tenantpulse {EVENTS / mine:>10,.0f} ev/s   ratio {base / mine:5.2f}x"
        )


if __name__ == "__main__":
    main()
