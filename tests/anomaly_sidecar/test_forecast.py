"""Forecast: intervals cover what they claim, seasons are found (and not invented) and kept in phase, it
beats the seasonal-naive forecast where a trend or season is there, and too little history is refused
with how much is needed and how much there is (in the model, the facade and the HTTP API)."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from benchmarks.forecast_accuracy import seasonal_naive
from tenantpulse.anomaly_sidecar.facade import ForecastUnavailable, PredictiveAnalytics, forecast_grid
from tenantpulse.anomaly_sidecar.forecast import InsufficientHistory, detect_period, forecast, history_needed
from tenantpulse.anomaly_sidecar.reader import PrometheusReader
from tests.anomaly_sidecar.test_service import TENANTS, World
from tests.support.sidecar import FakePrometheusApi

STEP = 300.0
DAY_STEPS = int(86_400 / STEP)


def daily(n: int, rng: np.random.Generator, noise: float = 3.0) -> np.ndarray:
    t = np.arange(n) * STEP
    return 100 + 20 * np.sin(2 * np.pi * t / 86_400) + rng.normal(0, noise, n)


def test_95_percent_interval_covers_90_to_99_percent_of_held_out_points() -> None:
    rng = np.random.default_rng(1)
    covered = []
    for _ in range(10):
        y = daily(6 * DAY_STEPS, rng)
        f = forecast(y[:-DAY_STEPS], STEP, DAY_STEPS * STEP, 0.95)
        held = y[-DAY_STEPS:]
        covered.append(np.mean((held >= f.lower) & (held <= f.upper)))
    assert 0.90 <= np.mean(covered) <= 0.99


def test_narrower_confidence_gives_narrower_interval_and_lower_coverage() -> None:
    rng = np.random.default_rng(2)
    y = daily(6 * DAY_STEPS, rng)
    wide = forecast(y[:-DAY_STEPS], STEP, DAY_STEPS * STEP, 0.95)
    narrow = forecast(y[:-DAY_STEPS], STEP, DAY_STEPS * STEP, 0.5)
    assert np.all(narrow.upper - narrow.lower < wide.upper - wide.lower)
    held = y[-DAY_STEPS:]
    assert 0.3 < np.mean((held >= narrow.lower) & (held <= narrow.upper)) < 0.7


def test_seasonal_series_is_forecast_in_phase() -> None:
    rng = np.random.default_rng(3)
    n = 5 * DAY_STEPS
    y = daily(n + DAY_STEPS, rng, noise=1.0)
    f = forecast(y[:n], STEP, DAY_STEPS * STEP)
    assert f.period == DAY_STEPS
    truth = 100 + 20 * np.sin(2 * np.pi * (np.arange(n, n + DAY_STEPS) * STEP) / 86_400)
    assert np.corrcoef(f.mean, truth)[0, 1] > 0.98
    assert np.argmax(f.mean) == pytest.approx(np.argmax(truth), abs=6)  # peak within half an hour
    assert np.mean(np.abs(f.mean - truth)) < 2.0


def test_no_season_is_invented_in_white_noise_and_trend_is_followed() -> None:
    rng = np.random.default_rng(4)
    noise = rng.normal(0, 1, 4 * DAY_STEPS)
    assert detect_period(noise, STEP) == 0
    trend = 0.05 * np.arange(3 * DAY_STEPS) + rng.normal(0, 0.5, 3 * DAY_STEPS)
    f = forecast(trend, STEP, 100 * STEP)
    expected_end = 0.05 * (3 * DAY_STEPS + 99)
    assert f.lower[-1] < expected_end < f.upper[-1]
    assert abs(f.mean[-1] - expected_end) < 3


def test_interval_widens_with_the_horizon_and_missing_values_are_bridged() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(10, 1, 500).cumsum() / 10 + 50
    y[100:110] = np.nan
    f = forecast(y, 60.0, 3600.0)
    assert len(f.mean) == 60 and np.all(np.isfinite(f.mean))
    width = f.upper - f.lower
    assert np.all(np.diff(width) >= 0) and width[-1] > width[0]


@pytest.mark.parametrize(
    ("values", "kwargs", "message"),
    [
        ([1.0, 2.0], {}, "10m forecast needs at least 12m of history, has 2m"),
        ([np.nan] * 10, {}, "has none"),
        ([1.0] * 10, {"confidence": 1.5}, "confidence"),
        ([1.0] * 10, {"step_seconds": 0}, "positive"),
    ],
)
def test_bad_arguments_raise_clear_errors(values: list[float], kwargs: dict, message: str) -> None:
    args = {"step_seconds": 60.0, "horizon_seconds": 600.0} | kwargs
    with pytest.raises(ValueError, match=message):
        forecast(np.array(values), **args)


def test_too_little_history_is_refused_with_both_figures() -> None:
    y = np.arange(100.0)  # 100 five-minute values: 8h20m
    with pytest.raises(InsufficientHistory) as info:
        forecast(y, STEP, 40 * 3600.0)  # 40h ahead needs 10h
    assert info.value.needed_seconds == 10 * 3600 and info.value.have_seconds == 100 * STEP
    assert str(info.value) == "a 1d16h forecast needs at least 10h of history, has 8h20m"
    assert forecast(y, STEP, 33 * 3600.0).mean.size == 33 * 12  # 8h15m needed: answered
    assert history_needed(30 * 86400.0, 2700.0) == 7.5 * 86400  # a 30d forecast: what 15d retention holds


def weekly(n: int, rng: np.random.Generator) -> np.ndarray:
    """Hourly values: a trend, a daily cycle, and weekends lower."""
    t = np.arange(n) * 3600.0
    weekend = ((t // 86_400) % 7 >= 5) * -15.0
    return 100 + 0.01 * np.arange(n) + 20 * np.sin(2 * np.pi * t / 86_400) + weekend + rng.normal(0, 2, n)


def test_trend_and_weekly_season_beat_seasonal_naive_30_days_ahead() -> None:
    rng = np.random.default_rng(6)
    history, ahead = 5 * 7 * 24, 30 * 24
    y = weekly(history + ahead, rng)
    f = forecast(y[:history], 3600.0, ahead * 3600.0)
    assert f.period == 7 * 24  # the week (which holds the day) is found
    truth = y[history:]
    naive, _, _ = seasonal_naive(y[:history], 3600.0, ahead, 0.95)
    ours_error, naive_error = np.mean(np.abs(f.mean - truth)), np.mean(np.abs(naive - truth))
    assert ours_error < 0.6 * naive_error
    assert 0.85 <= np.mean((truth >= f.lower) & (truth <= f.upper)) <= 1.0
    assert (f.upper - f.lower)[-1] > 1.5 * (f.upper - f.lower)[0]  # a month ahead is less certain


def test_a_long_linear_trend_is_not_extrapolated_past_where_it_bends() -> None:
    """A trend that stops: the damped trend forecasts a month ahead better than a straight line would."""
    rng = np.random.default_rng(7)
    rise = np.concatenate([np.linspace(0, 50, 200), np.full(400, 50.0)]) + rng.normal(0, 1, 600)
    f = forecast(rise, 3600.0, 720 * 3600.0)
    assert abs(f.mean[-1] - 50) < 10


def test_default_grid_keeps_a_day_a_whole_number_of_steps() -> None:
    h, span, step = forecast_grid("30d")
    assert (h, span) == (30 * 86400, 60 * 86400) and step == 2700 and 86400 % step == 0
    assert span / step <= 2000
    assert forecast_grid("1h")[2] == 45


def fresh_world(hours: float) -> World:
    """A Prometheus that has held samples for ``hours`` only, as a recently started one."""
    w = World(TENANTS)
    w.since = time.time() - hours * 3600
    w.by_expr |= {k.replace("[10s]", "[5m]"): v for k, v in w.by_expr.items()}  # the facade's rate window
    return w


def test_facade_says_how_much_history_a_30d_forecast_needs() -> None:
    world = fresh_world(6)
    with FakePrometheusApi(world.answer) as api:
        analytics = PredictiveAnalytics(reader=PrometheusReader(api.url))
        with pytest.raises(ForecastUnavailable) as info:
            analytics.forecast("request_rate", horizon="30d")
        assert re.search(r"needs at least 7d12h of history, has [67]h", str(info.value)), str(info.value)
        assert info.value.needed_seconds == 7.5 * 86400  # 8-9 values at the 45-minute step: one step each
        assert 6 * 3600 - 2700 <= info.value.have_seconds <= 6 * 3600 + 2700
        with pytest.raises(ForecastUnavailable, match="t1: request_rate: a 30d forecast needs"):
            analytics.forecast("request_rate", horizon="30d", tenant_id="t1")
        f = analytics.forecast("request_rate", horizon="1d")  # 6h holds the 6h a day ahead needs
        assert set(f) == set(TENANTS) and f["t1"].mean.size > 0
        assert f["t1"].times[0] > time.time() - 60 and f["t1"].history_points <= 6 * 3600 / 45 + 1
        with pytest.raises(ForecastUnavailable, match="nobody: no request_rate series in the last 2d"):
            f["nobody"]


def test_a_prometheus_started_minutes_ago_is_told_so_not_answered_with_nothing() -> None:
    """Seven minutes of data hold no sample at a 30d forecast's 45-minute step: the probe finds them."""
    world = fresh_world(7 / 60)
    with FakePrometheusApi(world.answer) as api:
        analytics = PredictiveAnalytics(reader=PrometheusReader(api.url))
        with pytest.raises(ForecastUnavailable, match=r"needs at least 7d12h of history, has [67]m"):
            analytics.forecast("request_rate", horizon="30d", tenant_id="t2")
        world.since = float("inf")  # nothing at all
        with pytest.raises(ForecastUnavailable, match="t2: no request_rate series in the last 60d"):
            analytics.forecast("request_rate", horizon="30d", tenant_id="t2")
