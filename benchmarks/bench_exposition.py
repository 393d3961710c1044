"""Exposition of ~100k series: the collector's render vs prometheus_client.generate_latest, same series.

Two scenarios, each built in both implementations with the same values:
- counters: 2,000 tenants x 50 event types of the EVENTS counter (the default cap per tenant);
- mixed: 512 tenants x (20 event counters, 10 duration histograms of 17 series each, revenue,
  active users, conversion, 2 unique-user gauges) = 195 series per tenant.
Time is the best of a few renders; memory is what tracemalloc sees held after building the series and
rendering once (the body itself is not kept), divided by the samples in the body. The baseline runs
with ``_created`` series disabled so both bodies hold the same samples.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from tenantpulse.conventions import catalog as c
from tenantpulse.exporters.collector import CollectorConfig, MetricsCollector
from tenantpulse.exporters.events import AppEvent, BusinessFigures

Render = Callable[[], bytes]


def _counter_pairs() -> list[tuple[str, str, int]]:
    types = [f"event_type_{j:02d}" for j in range(50)]
    return [(f"tenant-{i:05d}", t, (i + j) % 7 + 1) for i in range(2_000) for j, t in enumerate(types)]


def _mixed_tenants() -> list[tuple[str, list[tuple[str, int, list[float]]]]]:
    """Per tenant: (event type, count, durations) for 20 types; the first 10 carry durations."""
    out = []
    for i in range(512):
        types = []
        for j in range(20):
            durations = [((i * 31 + j * 7 + k * 13) % 900) / 100 for k in range(5)] if j < 10 else []
            types.append((f"event_type_{j:02d}", 5, durations))
        out.append((f"tenant-{i:05d}", types))
    return out


def counters_baseline() -> Render:
    registry = CollectorRegistry()
    counter = Counter(c.EVENTS.family, c.EVENTS.help, c.EVENTS.labels, registry=registry)
    for tenant, event_type, n in _counter_pairs():
        counter.labels(tenant, event_type).inc(n)
    return lambda: generate_latest(registry)


def counters_ours() -> Render:
    collector = MetricsCollector(CollectorConfig(max_series_per_tenant=60, max_event_types_per_tenant=50))
    events = [AppEvent(t, None, e) for t, e, n in _counter_pairs() for _ in range(n)]
    for start in range(0, len(events), 20_000):
        collector.ingest(events[start : start + 20_000], [])
    return collector.render


def mixed_baseline() -> Render:
    registry = CollectorRegistry()
    events = Counter(c.EVENTS.family, c.EVENTS.help, c.EVENTS.labels, registry=registry)
    durations = Histogram(
        c.EVENT_DURATION.name, c.EVENT_DURATION.help, c.EVENT_DURATION.labels, buckets=c.EVENT_DURATION.buckets,
        registry=registry,
    )  # fmt: skip
    revenue = Counter(c.REVENUE.family, c.REVENUE.help, c.REVENUE.labels, registry=registry)
    active = Gauge(c.ACTIVE_USERS.name, c.ACTIVE_USERS.help, c.ACTIVE_USERS.labels, registry=registry)
    conversion = Gauge(c.CONVERSION.name, c.CONVERSION.help, c.CONVERSION.labels, registry=registry)
    unique = Gauge(c.UNIQUE_USERS.name, c.UNIQUE_USERS.help, c.UNIQUE_USERS.labels, registry=registry)
    for tenant, types in _mixed_tenants():
        for event_type, n, values in types:
            events.labels(tenant, event_type).inc(n)
            for v in values:
                durations.labels(tenant, event_type).observe(v)
        revenue.labels(tenant).inc(12.5)
        active.labels(tenant).set(40)
        conversion.labels(tenant).set(0.25)
        unique.labels(tenant, "1h").set(3)
        unique.labels(tenant, "1d").set(3)
    return lambda: generate_latest(registry)


def mixed_ours() -> Render:
    collector = MetricsCollector(CollectorConfig(max_series_per_tenant=200, max_event_types_per_tenant=50))
    for tenant, types in _mixed_tenants():
        batch = []
        for event_type, n, values in types:
            batch += [
                AppEvent(tenant, f"u{k % 3}", event_type, {"duration_seconds": v})
                for k, v in enumerate(values)
            ]
            batch += [AppEvent(tenant, None, event_type)] * (n - len(values))
        collector.ingest(
            batch, [BusinessFigures(tenant, revenue=12.5, active_users=40, conversion_rate=0.25)]
        )
    return collector.render


def measure(build: Callable[[], Render], repeats: int) -> tuple[float, float, int]:
    """(best render seconds, bytes held per sample, samples in the body)."""
    gc.collect()
    tracemalloc.start()
    render = build()
    body = render()
    samples = sum(1 for line in body.splitlines() if not line.startswith(b"#"))
    del body
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        render()
        best = min(best, time.perf_counter() - t0)
    return best, held / samples, samples


def main() -> None:
    disable_created_metrics()  # same samples in both bodies: no extra _created series
    for name, baseline, ours in (
        ("counters", counters_baseline, counters_ours),
        ("mixed", mixed_baseline, mixed_ours),
    ):
        base_t, base_mem, base_n = measure(baseline, 2)
        ours_t, ours_mem, ours_n = measure(ours, 5)
        print(
            f"[{name}] samples: prometheus_client {base_n:,}, tenantpulse {ours_n:,} (incl. per-tenant series gauge)"
        )
        print(f"  prometheus_client generate_latest: {base_t * 1000:8.1f} ms  {base_mem:6.0f} B/series")
        print(f"  tenantpulse render:                {ours_t * 1000:8.1f} ms  {ours_mem:6.0f} B/series")
        print(
            f"  speed-up {base_t / ours_t:.1f}x (target >= 20x), memory {ours_mem:.0f} B/series "
            f"(target <= 200), {ours_mem / base_mem:.2f} of the baseline's"
        )


if __name__ == "__main__":
    main()
