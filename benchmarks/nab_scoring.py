"""The Numenta Anomaly Benchmark's scoring rules, as ``../shared/nab/README.md`` states them.

A detector's per-row scores become detections at one threshold; each detection is worth a scaled sigmoid
of its position relative to the labelled windows; missed windows cost ``A_FN``. The threshold is the one
that maximises the total over all files for a profile, and the total is normalised so that the null
detector (never fires) scores 0 and the perfect one 100.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Profile:
    """Weights of true positives, false positives and false negatives."""

    name: str
    a_tp: float
    a_fp: float
    a_fn: float


PROFILES: dict[str, Profile] = {
    "standard": Profile("standard", 1.0, 0.11, 1.0),
    "reward_low_FP": Profile("reward_low_FP", 1.0, 0.22, 1.0),
    "reward_low_FN": Profile("reward_low_FN", 1.0, 0.11, 2.0),
}


@dataclass(frozen=True)
class Labelled:
    """One file's scores with its anomaly windows as inclusive row-index pairs."""

    scores: np.ndarray
    windows: Sequence[tuple[int, int]]


@dataclass(frozen=True)
class Result:
    """Best threshold for a profile, the raw total there and its normalised score."""

    profile: str
    threshold: float
    total: float
    normalised: float


def sigma(p: np.ndarray | float) -> np.ndarray:
    """NAB's scaled sigmoid: 2 / (1 + exp(5p)) - 1, and -1 beyond three window widths past a window."""
    p = np.asarray(p, float)
    return np.where(p > 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * p)) - 1.0)


def probation(n: int) -> int:
    """Rows at the start of a file that are not scored."""
    return min(math.floor(0.15 * n), 750)


def row_values(n: int, windows: Sequence[tuple[int, int]], profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """For every row: the window it lies in (-1 if none) and what a detection there is worth.

    In a window the value is the true-positive value of a first detection at that row; outside,
    the (negative) false-positive cost. Probation rows get window -1 and value 0 (they never count).
    """
    win = np.full(n, -1, np.intp)
    value = np.full(n, -profile.a_fp)
    i = np.arange(n)
    prev_right, prev_width = None, None
    cursor = 0
    for w, (left, right) in enumerate(sorted(windows)):
        width = right - left + 1
        gap = slice(cursor, left)
        if prev_right is not None:
            value[gap] = profile.a_fp * sigma(np.abs(i[gap] - prev_right) / max(prev_width - 1, 1))
        inside = slice(left, right + 1)
        win[inside] = w
        value[inside] = sigma(-(right - i[inside] + 1) / width) / sigma(-1.0) * profile.a_tp
        prev_right, prev_width, cursor = right, width, right + 1
    if prev_right is not None:
        tail = slice(cursor, n)
        value[tail] = profile.a_fp * sigma(np.abs(i[tail] - prev_right) / max(prev_width - 1, 1))
    start = probation(n)
    win[:start] = -1
    value[:start] = 0.0
    return win, value


def score_at(files: Sequence[Labelled], profile: Profile, threshold: float) -> float:
    """Raw NAB total of all files when rows with score >= threshold are detections."""
    total = 0.0
    for f in files:
        win, value = row_values(len(f.scores), f.windows, profile)
        hit = np.asarray(f.scores) >= threshold
        total += value[hit & (win < 0)].sum()
        for w in range(len(f.windows)):
            rows = np.flatnonzero(hit & (win == w))
            total += value[rows[0]] if rows.size else -profile.a_fn
    return float(total)


def best_threshold(files: Sequence[Labelled], profile: Profile) -> Result:
    """Sweep every distinct score as the threshold; keep the one with the highest total."""
    windows = sum(len(f.windows) for f in files)
    base = -profile.a_fn * windows  # nothing detected
    scores, deltas_fp, win_ids, win_vals = [], [], [], []
    offset = 0
    for f in files:
        win, value = row_values(len(f.scores), f.windows, profile)
        counted = np.arange(len(f.scores)) >= probation(len(f.scores))
        s = np.asarray(f.scores, float)[counted]
        scores.append(s)
        deltas_fp.append(np.where(win[counted] < 0, value[counted], 0.0))
        win_ids.append(np.where(win[counted] >= 0, win[counted] + offset, -1))
        win_vals.append(np.where(win[counted] >= 0, value[counted], 0.0))
        offset += len(f.windows)
    s = np.concatenate(scores)
    order = np.argsort(-s, kind="stable")
    s, fp = s[order], np.concatenate(deltas_fp)[order]
    wid, wval = np.concatenate(win_ids)[order], np.concatenate(win_vals)[order]

    # Walk thresholds from high to low; a window's value is its best (earliest) detection so far.
    current = np.full(windows, -profile.a_fn)
    total, best, best_thr = base, base, float("inf")
    for k in range(s.size):
        if wid[k] >= 0:
            new = max(current[wid[k]], wval[k])
            total += new - current[wid[k]]
            current[wid[k]] = new
        else:
            total += fp[k]
        if (k + 1 == s.size or s[k + 1] != s[k]) and total > best:
            best, best_thr = total, float(s[k])
    return Result(profile.name, best_thr, best, normalise(best, windows, profile))


def normalise(total: float, windows: int, profile: Profile) -> float:
    """100 (S - S_null) / (S_perfect - S_null)."""
    null, perfect = -profile.a_fn * windows, profile.a_tp * windows
    return 100.0 * (total - null) / (perfect - null)


def score_all(files: Sequence[Labelled]) -> dict[str, Result]:
    """Best-threshold results for every profile."""
    return {name: best_threshold(files, p) for name, p in PROFILES.items()}
