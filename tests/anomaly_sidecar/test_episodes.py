"""The shown score: held at the episode's peak while the value stays outside the band it broke out of,
then falling 0.1 per minute; new episodes, missing samples and the one-hour limit."""

from __future__ import annotations

import numpy as np
import pytest

from tenantpulse.anomaly_sidecar.episodes import DECAY_PER_MINUTE, EPISODE_MAX_SECONDS, EpisodeHold

THRESHOLD = 0.9
ONE = np.array([0])


def step(
    hold: EpisodeHold, t: float, x: float, score: float, band: tuple[float, float] = (9.0, 11.0)
) -> float:
    out = hold.update(
        ONE, np.array([t]), np.array([x]), np.array([score]), *(np.array([b]) for b in band), THRESHOLD
    )
    return float(out[0])


def fresh() -> EpisodeHold:
    hold = EpisodeHold()
    hold.grow(1)
    return hold


def test_the_peak_is_held_while_the_value_stays_outside_the_band() -> None:
    hold = fresh()
    assert step(hold, 0, 10.0, 0.1) == 0.1  # calm: the detector's score as it is
    assert step(hold, 15, 30.0, 0.97) == 0.97  # the episode opens, band (9, 11) remembered
    for t in range(30, 600, 15):  # the detector has moved on, the value is still off
        assert step(hold, t, 30.0, 0.2, band=(25.0, 35.0)) == 0.97  # (the detector's band has moved too)
    after = step(hold, 600, 10.0, 0.1)  # back inside the remembered band: the fall starts
    assert after == pytest.approx(0.97 - DECAY_PER_MINUTE / 4)


def test_a_one_sample_peak_falls_below_medium_after_a_minute_and_high_after_two() -> None:
    hold = fresh()
    step(hold, 0, 30.0, 1.0)
    shown = {t: step(hold, t, 10.0, 0.05) for t in range(15, 181, 15)}
    assert shown[15] == pytest.approx(0.975) and shown[60] == pytest.approx(0.9)
    assert shown[75] < THRESHOLD and shown[105] > 0.8 > shown[135]
    assert shown[180] == pytest.approx(0.7)


def test_the_detectors_own_score_is_never_lowered_and_a_new_episode_opens_after_the_last() -> None:
    hold = fresh()
    step(hold, 0, 30.0, 0.95)
    assert step(hold, 15, 30.0, 0.99) == 0.99  # a bigger score within the episode raises the peak
    assert step(hold, 30, 30.0, 0.3) == 0.99
    for t in range(45, 1000, 15):
        last = step(hold, t, 10.0, 0.0)
    assert last == 0.0 and np.isnan(hold.start[0])  # the episode closed
    assert step(hold, 1015, 5.0, 0.92, band=(6.0, 8.0)) == 0.92  # a new one: its own band
    assert step(hold, 1030, 7.0, 0.1) == pytest.approx(0.92 - DECAY_PER_MINUTE / 4)  # inside (6, 8)


def test_a_missing_sample_does_not_hold_and_an_hour_ends_the_hold() -> None:
    hold = fresh()
    step(hold, 0, 30.0, 1.0)
    assert step(hold, 15, float("nan"), 0.0) == pytest.approx(1.0 - DECAY_PER_MINUTE / 4)
    hold = fresh()
    step(hold, 0, 30.0, 1.0)
    assert step(hold, EPISODE_MAX_SECONDS, 30.0, 0.0) == 1.0
    assert step(hold, EPISODE_MAX_SECONDS + 60, 30.0, 0.0) == pytest.approx(0.9)  # a new normal


def test_series_are_independent_and_reset_forgets() -> None:
    hold = EpisodeHold()
    hold.grow(3)
    idx = np.arange(3)
    band = (np.full(3, 9.0), np.full(3, 11.0))
    hold.update(idx, np.zeros(3), np.array([30.0, 10.0, 30.0]), np.array([1.0, 0.1, 0.5]), *band, THRESHOLD)
    shown = hold.update(idx, np.full(3, 15.0), np.full(3, 30.0), np.zeros(3), *band, THRESHOLD)
    assert shown.tolist() == pytest.approx([1.0, 0.1 - DECAY_PER_MINUTE / 4, 0.5 - DECAY_PER_MINUTE / 4])
    hold.reset(np.array([0]))
    assert (
        hold.update(ONE, np.array([30.0]), np.array([30.0]), np.zeros(1), *(b[:1] for b in band), THRESHOLD)[
            0
        ]
        == 0.0
    )
