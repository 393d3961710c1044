"""The synthetic traffic generator's batches, without a server: valid bodies, daily curve, misbehaviour."""

from __future__ import annotations

from collections import Counter

import pytest

from tenantpulse.conventions.indicators import ERROR_EVENT, PLAY_EVENT
from tenantpulse.exporters.api_models import BatchIn
from tenantpulse.exporters.traffic import TenantProfile, TrafficGenerator

DAY = 100.0


def generator(seed: int = 1) -> TrafficGenerator:
    profiles = [TenantProfile("t1", "k1", rate=500.0), TenantProfile("t2", "k2", rate=500.0)]
    return TrafficGenerator("http://127.0.0.1:1", profiles, day_seconds=DAY, seed=seed)


def shares(batch: dict[str, object]) -> Counter[str]:
    return Counter(e["event_type"] for e in batch["events"])  # type: ignore[index, union-attr]


def test_batches_are_valid_api_bodies() -> None:
    gen = generator()
    body = gen.batch(gen.profiles["t1"], dt=1.0, now=DAY / 2)
    BatchIn.model_validate(body)  # raises if the generator ever drifts from the API's models
    assert {e["tenant_id"] for e in body["events"]} == {"t1"}
    assert body["business"][0]["revenue"] > 0


def test_daily_curve_low_at_midnight_high_at_noon() -> None:
    gen = generator()
    assert gen.daily_factor(0.0) == pytest.approx(0.4)
    assert gen.daily_factor(DAY / 2) == pytest.approx(1.6)
    night = len(gen.batch(gen.profiles["t1"], dt=1.0, now=0.0)["events"])
    noon = len(gen.batch(gen.profiles["t1"], dt=1.0, now=DAY / 2)["events"])
    assert 150 < night < 250 and 700 < noon < 900  # Poisson around 200 and 800


def test_error_spike_and_traffic_drop_touch_only_that_tenant() -> None:
    gen = generator()
    gen.misbehave("t2", "error_spike")
    calm, spiking = (shares(gen.batch(gen.profiles[t], dt=4.0, now=DAY / 2)) for t in ("t1", "t2"))
    assert calm[ERROR_EVENT] / sum(calm.values()) < 0.05
    assert spiking[ERROR_EVENT] / sum(spiking.values()) > 0.2
    gen.misbehave("t2", "traffic_drop")
    dropped = sum(shares(gen.batch(gen.profiles["t2"], dt=4.0, now=DAY / 2)).values())
    assert dropped < 0.2 * sum(calm.values())
    gen.misbehave("t2", None)
    healed = shares(gen.batch(gen.profiles["t2"], dt=4.0, now=DAY / 2))
    assert healed[PLAY_EVENT] > 0.8 * sum(healed.values())


def test_misbehave_refuses_unknown_tenant_or_mode() -> None:
    gen = generator()
    with pytest.raises(ValueError, match="unknown tenant"):
        gen.misbehave("nobody", "error_spike")
    with pytest.raises(ValueError, match="unknown misbehaviour"):
        gen.misbehave("t1", "meltdown")  # type: ignore[arg-type]


def test_refused_posts_are_counted_not_raised() -> None:
    gen = generator()  # nothing listens on port 1
    assert gen.tick(dt=0.01) == 0
    assert gen.stats.refused == 2 and gen.stats.last_error
