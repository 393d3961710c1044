"""Where a series is heading: additive Holt-Winters with a detected season and honest prediction intervals.

The season (daily or weekly) is used only when the data show it (autocorrelation at that lag over at
least two full periods), the smoothing constants are chosen by one-step-ahead error over a small grid
(all candidates run together, vectorised), and the interval widths come from the model's own one-step
residuals propagated over the horizon (Hyndman et al., "Forecasting with exponential smoothing", 6.3).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

DAY = 86_400.0
WEEK = 7 * DAY
MIN_ACF = 0.3  # autocorrelation at the seasonal lag needed to call a season real

# Candidate smoothing constants (level, trend, season); the best one-step predictor wins.
_ALPHAS = (0.05, 0.2, 0.5, 0.9)
_BETAS = (0.0, 0.005, 0.02)
_GAMMAS = (0.05, 0.2, 0.5)


@dataclass(frozen=True)
class Forecast:
    """Forecast over the horizon: one row per step after the last value (``times`` in seconds from it)."""

    times: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    period: int  # season length in steps, 0 when no season was detected
    sigma: float  # standard deviation of the one-step errors


def detect_period(values: np.ndarray, step_seconds: float) -> int:
    """Daily or weekly period in steps if the data show it, else 0 (needs two full periods)."""
    best, best_acf = 0, MIN_ACF
    x = values - np.polyval(np.polyfit(np.arange(len(values)), values, 1), np.arange(len(values)))
    denom = float(np.dot(x, x))
    if denom == 0.0:
        return 0
    for seconds in (DAY, WEEK):
        m = round(seconds / step_seconds)
        if m < 2 or abs(m * step_seconds - seconds) > 0.01 * seconds or len(x) < 2 * m:
            continue
        acf = float(np.dot(x[:-m], x[m:])) / denom * len(x) / (len(x) - m)
        if acf > best_acf:
            best, best_acf = m, acf
    return best


def forecast(
    values: np.ndarray, step_seconds: float, horizon_seconds: float, confidence: float = 0.95
) -> Forecast:
    """Forecast ``horizon_seconds`` ahead of evenly spaced ``values`` (NaNs are interpolated)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if step_seconds <= 0 or horizon_seconds <= 0:
        raise ValueError("step_seconds and horizon_seconds must be positive")
    y = _fill(np.asarray(values, float))
    if y.size < 3:
        raise ValueError(f"need at least 3 values to forecast, got {y.size}")
    h = max(1, math.ceil(horizon_seconds / step_seconds))
    m = detect_period(y, step_seconds)
    level, trend, season, errors, params = _fit(y, m)
    alpha, beta, gamma = params

    k = np.arange(1, h + 1)
    mean = level + k * trend
    if m:
        mean = mean + season[(len(y) + k - 1) % m]
    # ETS(A,A,A) k-step error variance: sigma^2 (1 + sum_{j<k} c_j^2), c_j = alpha + j beta + gamma [m | j].
    j = np.arange(1, h)
    c = alpha + j * beta + (gamma * (j % m == 0) if m else 0.0)
    var_factor = np.concatenate([[1.0], 1.0 + np.cumsum(c * c)])
    burn = min(len(errors) // 2, max(m, 10))
    sigma = float(np.sqrt(np.mean(errors[burn:] ** 2)))
    half = norm.ppf(0.5 + confidence / 2) * sigma * np.sqrt(var_factor)
    return Forecast(k * step_seconds, mean, mean - half, mean + half, m, sigma)


def _fill(y: np.ndarray) -> np.ndarray:
    """Drop leading/trailing NaNs, interpolate inner ones (keeps the step spacing)."""
    ok = np.isfinite(y)
    if not ok.any():
        return y[:0]
    y = y[np.argmax(ok) : len(y) - np.argmax(ok[::-1])]
    ok = np.isfinite(y)
    if not ok.all():
        i = np.arange(len(y))
        y = np.interp(i, i[ok], y[ok])
    return y


def _fit(y: np.ndarray, m: int) -> tuple[float, float, np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Run every candidate (alpha, beta, gamma) at once; keep the one with the least one-step error."""
    grid = np.array(list(itertools.product(_ALPHAS, _BETAS, _GAMMAS if m else (0.0,))))
    a, b, g = grid[:, 0], grid[:, 1], grid[:, 2]
    n_cand = len(grid)
    if m:
        first = y[:m]
        level = np.full(n_cand, first.mean())
        season = np.tile(first - first.mean(), (n_cand, 1))
        trend = np.full(n_cand, (y[m : 2 * m].mean() - first.mean()) / m if len(y) >= 2 * m else 0.0)
        start = m
    else:
        level, season, trend, start = np.full(n_cand, y[0]), np.zeros((n_cand, 1)), np.zeros(n_cand), 1
    errors = np.zeros((len(y) - start, n_cand))
    rows = np.arange(n_cand)
    for i in range(start, len(y)):
        s_i = season[:, i % m] if m else 0.0
        e = y[i] - (level + trend + s_i)
        errors[i - start] = e
        level = level + trend + a * e
        trend = trend + b * e
        if m:
            season[rows, i % m] = s_i + g * e
    best = int(np.argmin(np.mean(errors[len(errors) // 4 :] ** 2, axis=0)))
    return (
        float(level[best]),
        float(trend[best]),
        season[best],
        errors[:, best],
        (float(a[best]), float(b[best]), float(g[best])),
    )
