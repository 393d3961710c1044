"""Exposition of 100k series: the collector's render vs prometheus_client.generate_latest, same series.

Series: 2,000 tenants x 50 event types of the EVENTS counter (the catalog's default cap per tenant).
Time is the best of a few renders; memory is what tracemalloc sees held after building the series and
rendering once (the rendered body itself is not kept), divided by the series count. The baseline
runs with ``_created`` series disabled so both bodies hold the same 100k samples.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics, generate_latest

from exporters import catalog
from exporters.collector import CollectorConfig, MetricsCollector
from exporters.events import AppEvent

TENANTS = 2_000
TYPES = 50
SERIES = TENANTS * TYPES


def _pairs() -> list[tuple[str, str]]:
    types = [f"event_type_{j:02d}" for j in range(TYPES)]
    return [(f"tenant-{i:05d}", t) for i in range(TENANTS) for t in types]


def build_baseline() -> Callable[[], bytes]:
    disable_created_metrics()  # same 100k samples as ours, no extra _created series
    registry = CollectorRegistry()
    counter = Counter(catalog.EVENTS.family, catalog.EVENTS.help, catalog.EVENTS.labels, registry=registry)
    for n, (tenant, event_type) in enumerate(_pairs()):
        counter.labels(tenant, event_type).inc(n % 97 + 1)
    return lambda: generate_latest(registry)


def build_collector() -> Callable[[], bytes]:
    collector = MetricsCollector(
        CollectorConfig(max_series_per_tenant=TYPES + 10, max_event_types_per_tenant=TYPES)
    )
    pairs = _pairs()
    for start in range(0, len(pairs), 10_000):
        collector.ingest([AppEvent(t, None, e) for t, e in pairs[start : start + 10_000]], [])
    return collector.render


def measure(build: Callable[[], Callable[[], bytes]], repeats: int) -> tuple[float, float, int]:
    """(best render seconds, bytes held per series, body size)."""
    gc.collect()
    tracemalloc.start()
    render = build()
    body = render()
    size = len(body)
    del body
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        render()
        best = min(best, time.perf_counter() - t0)
    return best, held / SERIES, size


def main() -> None:
    base_t, base_mem, base_size = measure(build_baseline, 3)
    ours_t, ours_mem, ours_size = measure(build_collector, 5)
    print(f"series: {SERIES:,} ({TENANTS:,} tenants x {TYPES} event types)")
    print(
        f"prometheus_client generate_latest: {base_t * 1000:8.1f} ms  {base_mem:6.0f} B/series  body {base_size:,} B"
    )
    print(
        f"tenantpulse render:                {ours_t * 1000:8.1f} ms  {ours_mem:6.0f} B/series  body {ours_size:,} B"
    )
    print(
        f"speed-up: {base_t / ours_t:.1f}x (target >= 20x)   memory ratio: {ours_mem / base_mem:.2f} (target <= 200 B/series)"
    )


if __name__ == "__main__":
    main()
