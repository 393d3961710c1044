"""Forecast: intervals cover what they claim, seasons are found (and not invented) and kept in phase."""

from __future__ import annotations

import numpy as np
import pytest

from tenantpulse.anomaly_sidecar.forecast import detect_period, forecast

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
        ([1.0, 2.0], {}, "at least 3"),
        ([np.nan] * 10, {}, "at least 3"),
        ([1.0] * 10, {"confidence": 1.5}, "confidence"),
        ([1.0] * 10, {"step_seconds": 0}, "positive"),
    ],
)
def test_bad_arguments_raise_clear_errors(values: list[float], kwargs: dict, message: str) -> None:
    args = {"step_seconds": 60.0, "horizon_seconds": 600.0} | kwargs
    with pytest.raises(ValueError, match=message):
        forecast(np.array(values), **args)
