"""The sidecar loop against a scripted Prometheus API: one instant query per indicator per cycle, a spike
raises only its tenant's score, outages make it stale and it recovers, state survives a restart, shards
split the work. (The chain with the real exporter and Prometheus is in tests/anomaly_sidecar/test_integration.py.)"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tenantpulse.anomaly_sidecar import state as state_file
from tenantpulse.anomaly_sidecar.exposition import FORECAST_FAMILIES, SERIES_FAMILIES
from tenantpulse.anomaly_sidecar.reader import PrometheusReader
from tenantpulse.anomaly_sidecar.service import ServiceConfig, SidecarService
from tenantpulse.conventions import catalog as c
from tenantpulse.conventions import indicators
from tenantpulse.kernel.durations import format_duration
from tests.support.ports import wait_until
from tests.support.sidecar import FakePrometheusApi, matrix_answer, vector_answer

WATCH = ("request_rate", "error_rate")
WINDOW = 10.0
TENANTS = [f"t{i}" for i in range(40)]


class World:
    """Per-tenant indicator values with a daily-ish wave and noise; tenants can spike or the API can fail."""

    def __init__(self, tenants: list[str]) -> None:
        self.tenants = tenants
        self.spiking: dict[str, float] = {}  # tenant -> time from which its values are 8x
        self.down = False
        self.since = -math.inf  # no samples before this time (a freshly started Prometheus)
        self.queries: list[str] = []
        w = format_duration(WINDOW)
        self.by_expr = {indicators.get(n).promql(window=w): (n, None) for n in WATCH}
        self.by_expr |= {indicators.get(n).promql([t], window=w): (n, t) for n in WATCH for t in tenants}

    def value(self, tenant: str, name: str, t: float) -> float:
        k = int(tenant[1:])
        noise = math.sin(t * 12.9898 + k * 78.233) * 43758.5453 % 1.0 - 0.5  # deterministic noise
        base = 100.0 + k if name == "request_rate" else 0.02
        wave = 1 + 0.3 * math.sin(2 * math.pi * t / 86400)
        v = base * wave * (1 + 0.05 * noise)
        return v * (8 if t >= self.spiking.get(tenant, math.inf) else 1)

    def spike(self, tenant: str, since: float = 0.0) -> None:
        self.spiking[tenant] = since

    def answer(self, path: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, Any]:
        if self.down:
            return 503, {"status": "error", "error": "down for maintenance"}
        name, only = self.by_expr[form["query"]]
        tenants = [only] if only else self.tenants
        if path.endswith("/query"):
            self.queries.append(name)
            t = float(form["time"])
            return 200, vector_answer([({c.TENANT: x}, self.value(x, name, t)) for x in tenants], t)
        start, end, step = float(form["start"]), float(form["end"]), float(form["step"])
        times = np.arange(start, end + step / 2, step)
        times = times[times >= self.since]
        rows = [({c.TENANT: x}, [(t, self.value(x, name, t)) for t in times]) for x in tenants]
        return 200, matrix_answer(rows)


@pytest.fixture
def world() -> Iterator[tuple[World, FakePrometheusApi]]:
    w = World(TENANTS)
    with FakePrometheusApi(w.answer) as api:
        yield w, api


def make_service(api: FakePrometheusApi, **overrides: Any) -> SidecarService:
    cfg: dict[str, Any] = {
        "indicators": WATCH,
        "interval": 1.0,
        "rate_window": WINDOW,
        "backfill": 60.0,
        "warmup": 30,
        "forecast_history": 120.0,
        "forecast_step": 5.0,
        "forecast_horizon": 60.0,
    } | overrides
    return SidecarService(PrometheusReader(api.url, retries=0, timeout=2), ServiceConfig(**cfg))


def exposed(service: SidecarService) -> dict[str, dict[tuple[str, ...], float]]:
    """Family -> {label values: value} from the service's /metrics body."""
    out: dict[str, dict[tuple[str, ...], float]] = {}
    for fam in text_string_to_metric_families(service.table.body().decode()):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(s.labels.get(k, "") for k in (c.TENANT, c.INDICATOR))] = s.value
    return out


def test_backfill_then_each_cycle_costs_one_instant_query_per_indicator(
    world: tuple[World, FakePrometheusApi],
) -> None:
    w, api = world
    svc = make_service(api)
    learned = svc.backfill(300.0)
    assert learned == len(TENANTS) * len(WATCH) * 301  # 301 one-second steps per series
    assert all(m["observations"] == 301 for m in svc.models())
    before = len(api.requests)
    for _ in range(3):
        report = svc.cycle()
        assert report.scored == len(TENANTS) * len(WATCH) and report.errors == 0
    cycle_requests = api.requests[before:]
    assert len(cycle_requests) == 3 * len(WATCH)  # O(series): no history re-read per cycle
    assert all(path == "/api/v1/query" for path, _, _ in cycle_requests)
    metrics = exposed(svc)
    assert len(metrics[c.ANOMALY_SCORE.name]) == len(TENANTS) * len(WATCH)
    assert metrics[c.SIDECAR_SERIES.name][("", "")] == len(TENANTS) * len(WATCH)
    assert metrics[c.ANOMALY_STALE.name][("", "")] == 0


def test_a_spike_raises_only_its_tenants_score(world: tuple[World, FakePrometheusApi]) -> None:
    w, api = world
    svc = make_service(api)
    svc.backfill(300.0)
    svc.cycle()
    calm = exposed(svc)[c.ANOMALY_SCORE.name]
    assert max(calm.values()) < svc.bank.threshold
    w.spike("t7")
    svc.cycle()
    scores = exposed(svc)[c.ANOMALY_SCORE.name]
    assert scores[("t7", "request_rate")] >= svc.bank.threshold
    others = [v for (t, _), v in scores.items() if t != "t7"]
    assert max(others) < svc.bank.threshold
    expected = exposed(svc)[c.ANOMALY_UPPER.name][("t7", "request_rate")]
    assert expected < w.value("t7", "request_rate", 0) / 2  # the band still describes normal traffic
    alarms = {(m["tenant_id"], m["indicator"]) for m in svc.models() if m["alarm"]}
    assert ("t7", "request_rate") in alarms and all(t == "t7" for t, _ in alarms)


def test_an_episode_stays_exposed_while_it_lasts_then_decays(world: tuple[World, FakePrometheusApi]) -> None:
    """The detector scores an episode once; the exposed score holds its peak while the value stays
    outside the band it broke out of, then falls at DECAY_PER_MINUTE (docs/sidecar.md)."""
    w, api = world
    svc = make_service(api)
    svc.backfill(300.0)
    svc.cycle()
    w.spike("t7")  # 8x from now on: an episode that lasts
    key = ("t7", "request_rate")
    shown = []
    for _ in range(6):
        svc.cycle()
        shown.append(exposed(svc)[c.ANOMALY_SCORE.name][key])
    assert shown[0] >= svc.bank.threshold
    assert shown == [shown[0]] * 6  # held at the peak for the whole episode
    calm = [v for (t, _), v in exposed(svc)[c.ANOMALY_SCORE.name].items() if t != "t7"]
    assert max(calm) < svc.bank.threshold
    w.spiking.clear()  # back inside the band: the decay starts
    time.sleep(0.5)
    svc.cycle()
    after = exposed(svc)[c.ANOMALY_SCORE.name][key]
    assert shown[0] - 0.1 / 60 * 2 < after < shown[0]  # 0.1 per minute: about 0.001 in half a second
    assert after >= svc.bank.threshold  # still visible: a one-minute fall to 0.9


def test_warm_up_shows_nan_not_zero_and_says_how_many_samples_are_left(
    world: tuple[World, FakePrometheusApi],
) -> None:
    _, api = world
    svc = make_service(api, warmup=40, backfill=10.0, latency_offset=0.0)
    svc.backfill(10.0)  # 11 samples: 29 to go
    out = exposed(svc)
    scores = out[c.ANOMALY_SCORE.name]  # every series is there, with no score yet: NaN, not 0
    assert len(scores) == len(TENANTS) * len(WATCH) and all(math.isnan(v) for v in scores.values())
    assert all(m["score"] is None and m["warming_up"] for m in svc.models())
    remaining = out[c.ANOMALY_WARMUP_REMAINING.name]
    assert set(remaining.values()) == {29.0} and len(remaining) == len(TENANTS) * len(WATCH)
    assert out[c.ANOMALY_EXPECTED.name]  # the band is shown meanwhile
    for _ in range(30):
        svc.cycle()
    out = exposed(svc)
    scores = out[c.ANOMALY_SCORE.name]
    assert len(scores) == len(TENANTS) * len(WATCH) and not any(math.isnan(v) for v in scores.values())
    assert not out.get(c.ANOMALY_WARMUP_REMAINING.name)


def test_outage_marks_stale_keeps_values_and_recovers(world: tuple[World, FakePrometheusApi]) -> None:
    w, api = world
    svc = make_service(api)
    svc.backfill(30.0)
    svc.cycle()
    before = exposed(svc)
    ok_at = svc.last_success
    w.down = True
    report = svc.cycle()
    assert report.errors == len(WATCH)
    during = exposed(svc)
    assert during[c.ANOMALY_STALE.name][("", "")] == 1
    assert during[c.SIDECAR_QUERY_ERRORS.name][("", "")] == len(WATCH)
    assert during[c.ANOMALY_SCORE.name] == before[c.ANOMALY_SCORE.name]  # last values still served
    assert during[c.SIDECAR_LAST_SUCCESS.name][("", "")] == ok_at
    w.down = False
    svc.cycle()
    after = exposed(svc)
    assert after[c.ANOMALY_STALE.name][("", "")] == 0
    assert after[c.SIDECAR_LAST_SUCCESS.name][("", "")] > ok_at


def test_state_survives_a_restart(world: tuple[World, FakePrometheusApi], tmp_path: Path) -> None:
    w, api = world
    path = str(tmp_path / "state.bin")
    svc = make_service(api, state_path=path)
    svc.backfill(300.0)
    svc.cycle()
    svc.save_state()
    models = {(m["tenant_id"], m["indicator"]): m for m in svc.models()}
    body = svc.table.body()

    again = make_service(api, state_path=path)
    assert again.restored_from is not None
    assert (
        again.table.body().split(b"# HELP tenantpulse_anomaly_score")[1]
        == body.split(b"# HELP tenantpulse_anomaly_score")[1]
    )  # last values served before the first cycle
    restored = {(m["tenant_id"], m["indicator"]): m for m in again.models()}
    assert restored == models  # same series, same observations, not warming up again
    assert not any(m["warming_up"] for m in restored.values())
    for k, v in svc.bank.state().items():
        np.testing.assert_array_equal(v, again.bank.state()[k])
    w.spike("t3")  # the restored baselines recognise an anomaly at once, with no new warm-up
    again.cycle()
    assert any(m["alarm"] for m in again.models("t3"))


def test_state_is_dropped_for_series_of_another_shard(
    world: tuple[World, FakePrometheusApi], tmp_path: Path
) -> None:
    w, api = world
    path = str(tmp_path / "state.bin")
    svc = make_service(api, state_path=path)
    svc.cycle()
    svc.save_state()
    half = make_service(api, state_path=path, shard_index=1, shard_count=2)
    keys = {(m["tenant_id"], m["indicator"]) for m in half.models()}
    assert keys and keys < {(m["tenant_id"], m["indicator"]) for m in svc.models()}
    assert all(half.registry.owns(k) for k in keys)


def test_a_forgotten_series_leaves_nothing_in_the_state_file(
    world: tuple[World, FakePrometheusApi], tmp_path: Path
) -> None:
    """Regression: forgetting an absent series freed its bank slot and label set but kept its last
    outputs, warm-up count and newest-sample time, so every later state file still held them."""
    w, api = world
    path = str(tmp_path / "state.bin")
    svc = make_service(api, state_path=path, forget_after=3600.0)
    svc.backfill(60.0)
    svc.cycle()
    assert svc.refresh_forecasts() == len(TENANTS) * len(WATCH)
    slots = [svc.registry.get(("t5", name)) for name in WATCH]
    w.tenants = [t for t in TENANTS if t != "t5"]  # t5 left: Prometheus last returned it 2 hours ago
    svc.last_seen[slots] -= 7200.0
    svc.cycle()
    assert "t5" not in {m["tenant_id"] for m in svc.models()}
    assert len(svc.registry) == (len(TENANTS) - 1) * len(WATCH)
    svc.save_state()
    arrays, _ = state_file.unpack(state_file.load(path))
    for metric in SERIES_FAMILIES + FORECAST_FAMILIES:
        assert np.isnan(arrays[f"out.{metric.name}"][slots]).all(), metric.name
    assert (arrays["observed"][slots] == 0).all()
    assert (arrays["last_t"][slots] == -np.inf).all()
    assert not arrays["bank.used"][slots].any()
    assert (svc.last_seen[slots] == np.inf).all()  # free slots: the absent-series check stays cheap


def test_shards_split_the_series_without_overlap(world: tuple[World, FakePrometheusApi]) -> None:
    _, api = world
    shards = [make_service(api, shard_index=i, shard_count=3) for i in range(3)]
    for s in shards:
        s.cycle()
    sets = [set(exposed(s)[c.ANOMALY_EXPECTED.name]) for s in shards]  # (no score yet: warming up)
    assert sum(len(x) for x in sets) == len(set().union(*sets)) == len(TENANTS) * len(WATCH)


def test_forecasts_are_published_with_the_horizon_label(world: tuple[World, FakePrometheusApi]) -> None:
    w, api = world
    svc = make_service(api)
    svc.cycle()
    assert svc.refresh_forecasts() == len(TENANTS) * len(WATCH)
    body = svc.table.body().decode()
    fams = {f.name: f for f in text_string_to_metric_families(body)}
    for metric in (c.FORECAST, c.FORECAST_LOWER, c.FORECAST_UPPER):
        samples = fams[metric.name].samples
        assert len(samples) == len(TENANTS) * len(WATCH)
        assert {s.labels[c.HORIZON] for s in samples} == {"1m"}
    f = {
        s.labels[c.TENANT]: s.value
        for s in fams[c.FORECAST.name].samples
        if s.labels[c.INDICATOR] == "request_rate"
    }
    lo = {
        s.labels[c.TENANT]: s.value
        for s in fams[c.FORECAST_LOWER.name].samples
        if s.labels[c.INDICATOR] == "request_rate"
    }
    assert all(lo[t] <= f[t] for t in f)
    now = time.time()
    for t in ("t0", "t39"):  # each tenant's own level, about where the series is heading
        assert f[t] == pytest.approx(w.value(t, "request_rate", now + 60), rel=0.1)


def test_state_file_from_another_codec_is_refused(
    world: tuple[World, FakePrometheusApi], tmp_path: Path
) -> None:
    _, api = world
    path = tmp_path / "state.bin"
    path.write_bytes(b"not a state file")
    with pytest.raises(state_file.StateError, match="not a tenantpulse state file"):
        make_service(api, state_path=str(path))


def test_unknown_indicator_is_refused() -> None:
    with pytest.raises(KeyError, match="valid"):
        ServiceConfig(indicators=("nope",))


def test_incompatible_state_is_set_aside_and_the_sidecar_starts_fresh(
    world: tuple[World, FakePrometheusApi], tmp_path: Path
) -> None:
    _, api = world
    path = tmp_path / "state.bin"
    svc = make_service(api, state_path=str(path))
    svc.cycle()
    svc.save_state()
    arrays, meta = state_file.unpack(state_file.load(path))
    del arrays["bank.params"]  # as if written by a model version with other parameters
    state_file.save(path, state_file.pack(arrays, meta))
    fresh = make_service(api, state_path=str(path))
    assert fresh.restored_from is None and len(fresh.registry) == 0
    assert not path.exists() and len(list(tmp_path.glob("state.bin.rejected-*"))) == 1
    fresh.cycle()
    assert len(fresh.registry) == len(TENANTS) * len(WATCH)


def test_the_loop_survives_a_failing_cycle(world: tuple[World, FakePrometheusApi]) -> None:
    _, api = world
    svc = make_service(api, interval=0.05, backfill=5.0, forecast_every=3600.0)
    real_learn = svc.learn
    calls = {"n": 0}

    def flaky(*args: Any) -> tuple[int, int]:
        calls["n"] += 1
        if calls["n"] in (2, 5):  # during the backfill (calls 1-2, retried as 3-4), then in a cycle
            raise RuntimeError("boom")
        return real_learn(*args)

    svc.learn = flaky  # type: ignore[method-assign]
    svc.start()
    try:
        wait_until(lambda: calls["n"] >= 8, timeout=20, what="cycles after the failures")
        wait_until(lambda: not svc.stale, timeout=5, what="stale cleared by the next good cycle")
    finally:
        svc.stop()
    assert len(svc.registry) == len(TENANTS) * len(WATCH)
