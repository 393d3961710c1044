"""Cost of one sidecar cycle over 100k series (20,000 tenants x the 5 watched indicators).

Each cycle is the real ``SidecarService.cycle``: for every indicator a Prometheus ``/api/v1/query``
JSON body of 20,000 series is parsed (``json.loads`` + the reader's vector parsing; the body is
pre-built so loopback HTTP is left out), the series are looked up, scored in one vectorised bank
update, and /metrics is rendered. Values follow a daily wave plus noise at the default 15 s step.

Baselines in the same run, on the same data:
- scoring: the same detector called once per series in a Python loop (on a sample, extrapolated);
- rendering: ``prometheus_client`` Gauges with the same label sets and values, ``generate_latest``.
Memory per tracked series is what tracemalloc sees held by the service after the first cycle.
Forecast refresh (slow cadence) is timed on a sample of series and extrapolated.

Then, at 100k and 300k series, the reader as it is (automatic GC paused while an answer is parsed) against
the reader without the pause (the baseline), on the same bodies, cycles interleaved A, B, A, B: cycle CPU
per series (min and median) and memory held per series.
"""

from __future__ import annotations

import gc
import json
import math
import statistics
import time
import tracemalloc
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from tenantpulse.anomaly_sidecar.detector import DetectorBank
from tenantpulse.anomaly_sidecar.exposition import FORECAST_FAMILIES, SERIES_FAMILIES
from tenantpulse.anomaly_sidecar.forecast import forecast
from tenantpulse.anomaly_sidecar.reader import PrometheusReader, Vector, parse_vector
from tenantpulse.anomaly_sidecar.service import ServiceConfig, SidecarService
from tenantpulse.conventions import catalog as c
from tenantpulse.conventions import indicators
from tenantpulse.kernel.durations import format_duration

TENANTS = 20_000
STEP = 15.0
BUDGET = 15.0
WARM_CYCLES = 3
TIMED_CYCLES = 5
LOOP_SAMPLE = 2_000
START = 1_764_000_000.0


class CannedReader(PrometheusReader):
    """A reader whose server answers are JSON bodies prepared in advance (parsed on every call)."""

    def __init__(self) -> None:
        super().__init__("http://canned.invalid")
        self.bodies: dict[str, bytes] = {}
        self.parse_seconds = 0.0

    def _call(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        t0 = time.process_time()
        data = json.loads(self.bodies[params["query"]])["data"]
        self.parse_seconds += time.process_time() - t0
        return data


class UnpausedReader(CannedReader):
    """The baseline: the reader before the GC pause, collections running all through the parse."""

    def query(self, expr: str, at: float | None = None) -> Vector:
        return parse_vector(self._call("/api/v1/query", {"query": expr}))


GC_ROUNDS = 5


def gc_comparison(tenants_n: int, rng: np.random.Generator) -> None:
    """Cycle CPU per series and memory per series, GC paused during the parse vs not, interleaved."""
    tenants = [f"tenant-{i:05d}" for i in range(tenants_n)]
    exprs = {n: indicators.get(n).promql(window=format_duration(300)) for n in indicators.WATCHED}
    config = ServiceConfig(interval=STEP, rate_window=300, warmup=10)
    n_series = tenants_n * len(exprs)
    bodies = make_bodies(exprs, tenants, START, rng)
    readers = {"baseline (no pause)": UnpausedReader(), "GC paused in parse": CannedReader()}
    services: dict[str, SidecarService] = {}
    memory: dict[str, float] = {}
    for name, reader in readers.items():
        reader.bodies = bodies
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        services[name] = SidecarService(reader, config)
        services[name].cycle()
        gc.collect()
        memory[name] = (tracemalloc.get_traced_memory()[0] - base) / n_series
        tracemalloc.stop()
    cpu: dict[str, list[float]] = {name: [] for name in readers}
    t = START
    for k in range(WARM_CYCLES + GC_ROUNDS):
        t += STEP
        bodies = make_bodies(exprs, tenants, t, rng)
        for name, reader in readers.items():  # interleaved: baseline, paused, baseline, paused, ...
            reader.bodies = bodies
            c0 = time.process_time()
            report = services[name].cycle()
            if k >= WARM_CYCLES:
                cpu[name].append(time.process_time() - c0)
            assert report.scored == n_series, report
    print(f"GC pause during the parse, {n_series:,} series, {GC_ROUNDS} interleaved cycles each:")
    for name in readers:
        per = [x / n_series * 1e6 for x in cpu[name]]
        print(
            f"  {name:20}: cycle min {min(per):.2f} us/series, median {statistics.median(per):.2f} us/series; "
            f"memory {memory[name]:,.0f} B/series"
        )
    base, paused = (statistics.median(cpu[name]) for name in readers)
    print(f"  paused / baseline cycle CPU (medians): {paused / base:.2f}x")


def make_bodies(
    exprs: dict[str, str], tenants: list[str], t: float, rng: np.random.Generator
) -> dict[str, bytes]:
    """One Prometheus-shaped instant-query answer per indicator: a daily wave per tenant plus noise."""
    wave = 1 + 0.3 * math.sin(2 * math.pi * (t % 86400) / 86400)
    base = 10 + np.arange(len(tenants)) % 97
    bodies = {}
    for k, (name, expr) in enumerate(exprs.items()):
        values = base * (k + 1) * wave * (1 + 0.05 * rng.standard_normal(len(tenants)))
        result = [
            {"metric": {c.TENANT: tenant}, "value": [t, repr(float(v))]}
            for tenant, v in zip(tenants, values.tolist(), strict=True)
        ]
        bodies[expr] = json.dumps(
            {"status": "success", "data": {"resultType": "vector", "result": result}}
        ).encode()
        del name
    return bodies


def per_series_loop(bank: DetectorBank, idx: np.ndarray, t: float, values: np.ndarray) -> None:
    """The baseline: the same detector driven one series at a time, as a non-vectorised service would."""
    for i, x in zip(idx.tolist(), values.tolist(), strict=True):
        bank.update(np.array([i]), t, np.array([x]))


def client_render(service: SidecarService) -> tuple[float, float]:
    """prometheus_client with the same families, labels and values: (set-up seconds, render seconds)."""
    t0 = time.perf_counter()
    registry = CollectorRegistry()
    for metric in SERIES_FAMILIES + FORECAST_FAMILIES:
        gauge = Gauge(metric.name, metric.help, metric.labels, registry=registry)
        values = service.table.values[metric.name]
        for (tenant, name), i in service.registry.items():
            v = values[i]
            if v == v:
                labels = (tenant, name, service.horizon) if metric in FORECAST_FAMILIES else (tenant, name)
                gauge.labels(*labels).set(v)
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    generate_latest(registry)
    return setup, time.perf_counter() - t0


def main() -> None:
    rng = np.random.default_rng(1)
    tenants = [f"tenant-{i:05d}" for i in range(TENANTS)]
    window = format_duration(300)
    exprs = {n: indicators.get(n).promql(window=window) for n in indicators.WATCHED}
    reader = CannedReader()
    config = ServiceConfig(interval=STEP, rate_window=300, warmup=10)
    n_series = TENANTS * len(exprs)

    gc.collect()
    tracemalloc.start()
    base_mem = tracemalloc.get_traced_memory()[0]
    reader.bodies = make_bodies(exprs, tenants, START, rng)
    bodies_mem = tracemalloc.get_traced_memory()[0] - base_mem
    service = SidecarService(reader, config)
    service.cycle()
    reader.bodies = {}
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base_mem
    tracemalloc.stop()

    t = START
    for _ in range(WARM_CYCLES):
        t += STEP
        reader.bodies = make_bodies(exprs, tenants, t, rng)
        service.cycle()

    wall: list[float] = []
    cpu: list[float] = []
    parse = 0.0
    render = 0.0
    for _ in range(TIMED_CYCLES):
        t += STEP
        reader.bodies = make_bodies(exprs, tenants, t, rng)
        reader.parse_seconds = 0.0
        w0, c0 = time.perf_counter(), time.process_time()
        report = service.cycle()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
        assert report.scored == n_series, report
        parse += reader.parse_seconds
        r0 = time.process_time()
        service.table.render_series()
        render += time.process_time() - r0

    loop_bank = DetectorBank(warmup=10)
    loop_idx = loop_bank.add(LOOP_SAMPLE)
    for k in range(WARM_CYCLES + 1):
        loop_bank.update(loop_idx, START + k * STEP, 100 + rng.standard_normal(LOOP_SAMPLE))
    n0 = time.process_time()
    per_series_loop(loop_bank, loop_idx, t + STEP, 100 + rng.standard_normal(LOOP_SAMPLE))
    naive_cpu = (time.process_time() - n0) / LOOP_SAMPLE * n_series

    cycle_cpu = sum(cpu) / len(cpu)
    print(
        f"series: {n_series:,} ({TENANTS:,} tenants x {len(exprs)} indicators), {TIMED_CYCLES} timed cycles"
    )
    print(
        f"cycle: wall mean {sum(wall) / len(wall):.3f} s (max {max(wall):.3f} s), cpu mean {cycle_cpu:.3f} s "
        f"= {cycle_cpu / BUDGET:.1%} of the {BUDGET:.0f} s budget"
    )
    print(
        f"  of which: JSON parse {parse / TIMED_CYCLES:.3f} s, /metrics render {render / TIMED_CYCLES:.3f} s, "
        f"lookup+scoring {cycle_cpu - (parse + render) / TIMED_CYCLES:.3f} s"
    )
    print(
        f"series scored per second per core (whole cycle): {n_series / cycle_cpu:,.0f}; "
        f"one core fits ~{n_series * BUDGET / cycle_cpu / 1e6:.1f}M series in a {BUDGET:.0f} s cycle"
    )
    scoring = cycle_cpu - (parse + render) / TIMED_CYCLES
    print(
        f"baseline: the same detector called per series in a Python loop: {naive_cpu:.1f} s per cycle of "
        f"{n_series:,} series (measured on {LOOP_SAMPLE:,}) = {n_series / naive_cpu:,.0f} series/s; "
        f"vectorised lookup+scoring is {naive_cpu / scoring:.0f}x faster, the whole cycle {naive_cpu / cycle_cpu:.0f}x"
    )
    setup, client = client_render(service)
    body = service.table.body()
    print(
        f"/metrics render: ours {render / TIMED_CYCLES:.3f} s for {len(body) / 1e6:.1f} MB vs prometheus_client "
        f"generate_latest {client:.3f} s (+{setup:.1f} s to set the gauges): {client / (render / TIMED_CYCLES):.1f}x faster"
    )
    print(
        f"memory held after the first cycle: {held / n_series:,.0f} bytes per tracked series "
        f"({held / 1e6:.1f} MB; the 5 query answers themselves were {bodies_mem / 1e6:.1f} MB while parsed)"
    )
    bank_bytes = sum(v.nbytes for v in service.bank.state().values()) / service.bank.capacity
    print(f"  of which the detector bank's arrays: {bank_bytes:,.0f} bytes per series slot")
    sample = 200
    history = 576  # 2 days at 5 minutes
    phase = np.arange(history) * 300.0
    values = 100 + 30 * np.sin(2 * np.pi * phase / 86400) + rng.standard_normal((sample, history))
    f0 = time.process_time()
    for row in values:
        forecast(row, 300.0, 3600.0, 0.95)
    per = (time.process_time() - f0) / sample
    print(
        f"forecast refresh (slow cadence, separate thread): {per * 1000:.2f} ms per series of {history} points "
        f"-> {per * n_series:.0f} s of CPU per refresh of {n_series:,} series"
    )
    for tenants_n in (TENANTS, 3 * TENANTS):
        gc_comparison(tenants_n, rng)


if __name__ == "__main__":
    main()
