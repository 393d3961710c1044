"""The cross-validated NAB figure: folds by file stratified by category, settings chosen out of fold;
and the calm false-alarm rate the README's Limits quote."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from benchmarks.bench_nab import NabFile
from benchmarks.nab_cv import calm_rate, category, cross_validated, kept, stratified_folds


def fake_files() -> list[NabFile]:
    """Seven categories of 3 to 9 files, 1,000 rows each, one window per file (none in 'artNo')."""
    sizes = {"artNo": 3, "artWith": 3, "aws": 9, "ad": 3, "known": 4, "traffic": 4, "tweets": 5}
    t = np.arange(1000) * 300.0
    return [
        NabFile(f"{cat}/f{i}.csv", t, np.zeros(1000), [] if cat == "artNo" else [(500, 549)])
        for cat, n in sizes.items()
        for i in range(n)
    ]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_folds_are_by_file_and_stratified_by_category(seed: int) -> None:
    files = fake_files()
    fold = stratified_folds(files, 3, seed)
    assert sorted(Counter(fold.tolist()).values()) in ([10, 10, 11], [10, 11, 10])  # balanced sizes
    for cat in {category(f) for f in files}:
        per_fold = Counter(int(fold[i]) for i, f in enumerate(files) if category(f) == cat)
        assert max(per_fold.values()) - min(per_fold.get(k, 0) for k in range(3)) <= 1
    assert (stratified_folds(files, 3, seed) == fold).all()  # deterministic


def test_a_perfect_detector_scores_100_cross_validated_and_a_noisy_one_less_than_in_sample() -> None:
    files = fake_files()
    perfect = [np.where(np.arange(1000) == 500, float(bool(f.windows)), 0.0) for f in files]
    fig = cross_validated(files, [perfect], 3, 2)
    assert fig.cv["standard"] == pytest.approx(100.0) and fig.in_sample["standard"] == pytest.approx(100.0)
    rng = np.random.default_rng(0)
    noisy = [rng.random(1000) * 0.9 + np.where(np.arange(1000) == 520, rng.random() * 0.2, 0) for _ in files]
    fig = cross_validated(files, [noisy], 3, 3)
    for p in fig.cv:
        assert fig.cv[p] <= fig.in_sample[p] + 1e-9  # the in-sample threshold is the best one there is


def test_choosing_among_candidates_is_cross_validated_too() -> None:
    """A candidate that is perfect on some files and useless on the others is picked on the training
    folds; the held-out fold pays when it was picked for the wrong files."""
    files = fake_files()
    good = [np.where(np.arange(1000) == 500, float(bool(f.windows)), 0.0) for f in files]
    half = [g if i % 2 else np.zeros(1000) for i, g in enumerate(good)]
    both = cross_validated(files, [half, good], 3, 2)
    assert both.cv["standard"] == pytest.approx(100.0)  # the good one wins in every fold
    alone = cross_validated(files, [half], 3, 2)
    assert alone.cv["standard"] < both.cv["standard"]


def test_excluded_files_are_left_out_by_any_part_of_their_name() -> None:
    files = fake_files()
    keep = kept(files, ["tweets/", "aws/f3."])
    assert [files[i].name for i in keep if files[i].name.startswith(("tweets", "aws/f3"))] == []
    assert len(keep) == len(files) - 5 - 1 and kept(files, []) == list(range(len(files)))


def test_calm_noise_rarely_reaches_medium() -> None:
    """Issue 15: at most 5 samples per 100,000 of calm noise reach the medium threshold after a day."""
    assert calm_rate(series=100, days=8) <= 5.0
