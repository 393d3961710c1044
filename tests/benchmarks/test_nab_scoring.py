"""The NAB scorer on hand-made cases whose scores can be worked out on paper."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.nab_scoring import PROFILES, Labelled, best_threshold, normalise, probation, score_at, sigma

STD = PROFILES["standard"]
N = 1000  # probation = 150 rows
WINDOWS = [(400, 499), (700, 799)]


def scores_with(*rows: int, n: int = N) -> np.ndarray:
    s = np.zeros(n)
    s[list(rows)] = 1.0
    return s


def test_sigma_matches_the_published_formula() -> None:
    assert sigma(0.0) == pytest.approx(0.0)
    assert sigma(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert sigma(2.0) == pytest.approx(2 / (1 + math.exp(10)) - 1)
    assert sigma(3.5) == -1.0
    assert probation(4032) == 604 and probation(15000) == 750


def test_perfect_detector_scores_100_and_null_scores_0() -> None:
    files = [Labelled(scores_with(400, 700), WINDOWS), Labelled(np.zeros(N), [(300, 350)])]
    files[1].scores[300] = 1.0
    for profile in PROFILES.values():
        assert best_threshold(files, profile).normalised == pytest.approx(100.0)
    null = [Labelled(np.zeros(N), WINDOWS)]
    result = best_threshold(null, STD)
    assert result.normalised == pytest.approx(0.0) and result.threshold == math.inf


def test_detection_at_window_start_is_worth_a_tp_and_at_the_end_almost_nothing() -> None:
    start = score_at([Labelled(scores_with(400), [(400, 499)])], STD, 0.5)
    end = score_at([Labelled(scores_with(499), [(400, 499)])], STD, 0.5)
    assert start == pytest.approx(1.0)
    assert end == pytest.approx(sigma(-1 / 100) / sigma(-1.0))
    assert 0 < end < 0.03
    middle = score_at([Labelled(scores_with(450), [(400, 499)])], STD, 0.5)
    assert end < middle < start


def test_only_the_earliest_detection_in_a_window_counts() -> None:
    one = score_at([Labelled(scores_with(420), [(400, 499)])], STD, 0.5)
    many = score_at([Labelled(scores_with(420, 430, 490), [(400, 499)])], STD, 0.5)
    assert one == many


def test_false_positive_after_a_window_costs_little_close_by_and_a_fp_far_away() -> None:
    base = score_at([Labelled(scores_with(400), [(400, 499)])], STD, 0.5)
    near = score_at([Labelled(scores_with(400, 505), [(400, 499)])], STD, 0.5) - base
    far = score_at([Labelled(scores_with(400, 900), [(400, 499)])], STD, 0.5) - base
    assert near == pytest.approx(STD.a_fp * float(sigma(6 / 99)))
    assert -STD.a_fp < near < 0
    assert far == pytest.approx(-STD.a_fp)  # more than 3 widths past: sigma = -1
    before = score_at([Labelled(scores_with(200, 400), [(400, 499)])], STD, 0.5) - base
    assert before == pytest.approx(-STD.a_fp)  # no window precedes it


def test_probation_rows_never_count_and_misses_cost_a_fn() -> None:
    in_probation = score_at([Labelled(scores_with(100), [(400, 499)])], STD, 0.5)
    assert in_probation == -STD.a_fn
    low_fn = PROFILES["reward_low_FN"]
    assert score_at([Labelled(np.zeros(N), [(400, 499)])], low_fn, 0.5) == -2.0


def test_threshold_is_chosen_to_maximise_the_total_and_agrees_with_direct_scoring() -> None:
    rng = np.random.default_rng(0)
    files = [Labelled(rng.random(N) ** 8, WINDOWS) for _ in range(3)]
    for f in files:
        f.scores[410] = 0.999  # an early, confident detection in the first window
    for profile in PROFILES.values():
        result = best_threshold(files, profile)
        assert result.total == pytest.approx(score_at(files, profile, result.threshold))
        for thr in np.linspace(0, 1, 41):
            assert score_at(files, profile, thr) <= result.total + 1e-9
        assert result.normalised == pytest.approx(normalise(result.total, 6, profile))


def test_low_fp_profile_punishes_false_positives_twice_as_hard() -> None:
    files = [Labelled(scores_with(400, 900), [(400, 499)])]
    std = score_at(files, STD, 0.5)
    low_fp = score_at(files, PROFILES["reward_low_FP"], 0.5)
    assert std == pytest.approx(1 - 0.11) and low_fp == pytest.approx(1 - 0.22)


def test_windowed_gaussian_baseline_reproduces_its_published_nab_score() -> None:
    """End to end on the real NAB files: our scorer + NAB's windowedGaussian give the published 36.8."""
    from benchmarks.bench_nab import PUBLISHED, evaluate, load, nab_dir, windowed_gaussian

    root = nab_dir()
    if root is None:
        pytest.skip("NAB data absent: set TENANTPULSE_NAB_DIR or provide ../shared/nab")
    files = load(root)
    result = evaluate(files, [windowed_gaussian(f.x) for f in files])["standard"]
    assert result.normalised == pytest.approx(PUBLISHED["windowedGaussian"], abs=1.0)


def test_our_detector_keeps_its_nab_scores() -> None:
    """Regression guard on the README's quality figures (one configuration, all 31 files, online):
    in-sample 78.5 / 72.2 / 82.8 and cross-validated 76.4 / 70.1 / 80.5 (benchmarks/nab_cv.py)."""
    from benchmarks.bench_nab import evaluate, load, nab_dir, ours
    from benchmarks.nab_cv import FOLDS, REPEATS, cross_validated

    root = nab_dir()
    if root is None:
        pytest.skip("NAB data absent: set TENANTPULSE_NAB_DIR or provide ../shared/nab")
    files = load(root)
    scores = ours(files)
    results = evaluate(files, scores)
    assert results["standard"].normalised >= 78.4
    assert results["reward_low_FP"].normalised >= 72.1
    assert results["reward_low_FN"].normalised >= 82.7
    cv = cross_validated(files, [scores], FOLDS, REPEATS).cv
    assert cv["standard"] >= 76.3 and cv["reward_low_FP"] >= 70.0 and cv["reward_low_FN"] >= 80.4
