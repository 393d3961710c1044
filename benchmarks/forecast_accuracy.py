"""Forecast accuracy on NAB: our Holt-Winters against a seasonal-naive forecast, same files, same run.

Every file of ``$TENANTPULSE_NAB_DIR`` (default ``../shared/nab``) is put on a regular grid at its
median step (a missing row is NaN, which the forecaster bridges); the last ``HOLD_OUT`` of it is held
out and forecast in one go from the rest, at the 95% level. Scores per file:

- MASE: mean absolute error over the held-out part divided by the in-sample mean absolute one-step
  change (Hyndman and Koehler 2006, non-seasonal scale, so an exactly periodic file is not divided by
  zero); below 1 beats the one-step naive forecast in-sample, and lower is better;
- coverage: share of held-out values inside the 95% interval (0.95 is honest).

The baseline is the seasonal-naive forecast (the value one day earlier, or the last value when a day
is not a whole number of steps or the history is shorter than a day), with the interval of Hyndman and
Athanasopoulos, "Forecasting: principles and practice", 5.5 (residual sd times sqrt(days ahead)).
Reported: per file, then median and mean over the files, and how many files each forecast wins.

``python -m benchmarks forecast-accuracy``
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from benchmarks.bench_nab import load, nab_dir
from tenantpulse.anomaly_sidecar.forecast import DAY, forecast

HOLD_OUT = 0.2  # the last fifth of each file is what is forecast
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Scored:
    """One forecast of one file's held-out part."""

    mase: float
    coverage: float


def regular(t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """The values on a grid at the median step (rows off the grid go to the nearest slot)."""
    step = float(np.median(np.diff(t)))
    slot = np.round((t - t[0]) / step).astype(int)
    grid = np.full(int(slot.max()) + 1, np.nan)
    grid[slot] = x
    return grid, step


def seasonal_naive(
    y: np.ndarray, step: float, h: int, confidence: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The value one season back (a day, else the last value) and its widening interval."""
    m = round(DAY / step)
    if abs(m * step - DAY) > 0.01 * DAY or len(y) < 2 * m:
        m = 1
    y = _bridge(y)
    k = np.arange(1, h + 1)
    mean = y[len(y) - m + (k - 1) % m]
    residuals = y[m:] - y[:-m]
    sigma = float(np.sqrt(np.mean(residuals**2)))
    half = norm.ppf(0.5 + confidence / 2) * sigma * np.sqrt(np.ceil(k / m))
    return mean, mean - half, mean + half


def _bridge(y: np.ndarray) -> np.ndarray:
    """Inner gaps interpolated (the held-in part starts and ends on a row of the file)."""
    ok = np.isfinite(y)
    i = np.arange(len(y))
    return np.interp(i, i[ok], y[ok])


def score(truth: np.ndarray, scale: float, mean: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> Scored:
    ok = np.isfinite(truth)
    err = float(np.mean(np.abs(truth[ok] - mean[ok])))
    inside = float(np.mean((truth[ok] >= lower[ok]) & (truth[ok] <= upper[ok])))
    return Scored(err / scale, inside)


def run_file(t: np.ndarray, x: np.ndarray) -> tuple[Scored, Scored] | None:
    """(ours, seasonal naive) for one file; None when its in-sample scale is zero (a constant file)."""
    y, step = regular(t, x)
    cut = len(y) - math.ceil(HOLD_OUT * len(y))
    while not np.isfinite(y[cut - 1]):
        cut -= 1
    train, truth = y[:cut], y[cut:]
    filled = _bridge(train)
    scale = float(np.mean(np.abs(np.diff(filled))))
    if scale == 0.0:
        return None
    h = len(truth)
    f = forecast(train, step, h * step, CONFIDENCE)
    ours = score(truth, scale, f.mean, f.lower, f.upper)
    naive = score(truth, scale, *seasonal_naive(train, step, h, CONFIDENCE))
    return ours, naive


def _summary(name: str, values: Sequence[float]) -> str:
    return f"{name}: median {statistics.median(values):.3f}, mean {statistics.fmean(values):.3f}"


def main(argv: Sequence[str] = ()) -> None:
    root = nab_dir()
    if root is None:
        print("skipped: NAB data not found (set TENANTPULSE_NAB_DIR or put it at ../shared/nab)")
        return
    files = load(root)
    started = time.perf_counter()
    print(f"{len(files)} files from {root}; last {HOLD_OUT:.0%} of each held out; {CONFIDENCE:.0%} intervals")
    print(f"{'file':58} {'MASE ours':>9} {'snaive':>8} {'cover ours':>10} {'snaive':>8}")
    rows: list[tuple[Scored, Scored]] = []
    for f in files:
        got = run_file(f.t, f.x)
        if got is None:
            print(f"{f.name:58} skipped: constant held-in part (MASE undefined)")
            continue
        ours, naive = got
        rows.append(got)
        print(f"{f.name:58} {ours.mase:9.3f} {naive.mase:8.3f} {ours.coverage:10.3f} {naive.coverage:8.3f}")
    ours_mase = [o.mase for o, _ in rows]
    naive_mase = [n.mase for _, n in rows]
    wins = sum(o.mase < n.mase for o, n in rows)
    print(_summary("MASE, Holt-Winters   ", ours_mase))
    print(_summary("MASE, seasonal naive ", naive_mase))
    print(_summary("coverage (95%), Holt-Winters  ", [o.coverage for o, _ in rows]))
    print(_summary("coverage (95%), seasonal naive", [n.coverage for _, n in rows]))
    print(
        f"Holt-Winters has the lower MASE on {wins} of {len(rows)} files; "
        f"{time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
