"""Where a series is heading: additive damped-trend Holt-Winters with a detected season and prediction
intervals that widen with the horizon.

The season (daily or weekly) is used only when the data show it (autocorrelation at that lag over at
least two full periods), the smoothing and damping constants are chosen by one-step-ahead error over a
small grid (all candidates run together, vectorised), and the interval widths come from the model's own
one-step residuals propagated over the horizon (Hyndman et al., "Forecasting with exponential
smoothing", 6.3). Too little history for the horizon is refused (``InsufficientHistory``), not guessed.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from tenantpulse.kernel.durations import format_duration

DAY = 86_400.0
WEEK = 7 * DAY
MIN_ACF = 0.3  # autocorrelation at the seasonal lag needed to call a season real
# History needed before a forecast is given: a quarter of the horizon (a 30d forecast from 7.5 days,
# which Prometheus's default 15d retention holds), and at least MIN_POINTS values. Less says nothing
# about where a series is heading that far ahead, so it is refused with both figures, not guessed.
HISTORY_PER_HORIZON = 0.25
MIN_POINTS = 12

# Candidate smoothing constants (level, trend, season); the best one-step predictor wins.
_ALPHAS = (0.05, 0.2, 0.5, 0.9)
_BETAS = (0.0, 0.005, 0.02)
_GAMMAS = (0.05, 0.2, 0.5)
# Trend damping: each step ahead keeps PHI of the previous step's trend, so a trend learnt over days is
# not extrapolated unchanged over weeks (Gardner and McKenzie 1985; it wins most M-competition series).
_PHIS = (0.9, 0.98, 1.0)


class InsufficientHistory(ValueError):
    """Too little history for a forecast at this horizon; says how much it needs and how much it has."""

    def __init__(self, needed_seconds: float, have_seconds: float, horizon_seconds: float) -> None:
        self.needed_seconds = needed_seconds
        self.have_seconds = have_seconds
        self.horizon_seconds = horizon_seconds
        super().__init__(
            f"a {format_duration(horizon_seconds)} forecast needs at least {format_duration(needed_seconds)} "
            f"of history, has {format_duration(have_seconds) if have_seconds > 0 else 'none'}"
        )


def history_needed(horizon_seconds: float, step_seconds: float) -> float:
    """Seconds of history ``forecast`` needs for this horizon at this step (see HISTORY_PER_HORIZON)."""
    return max(HISTORY_PER_HORIZON * horizon_seconds, MIN_POINTS * step_seconds)


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
    """Forecast ``horizon_seconds`` ahead of evenly spaced ``values`` (NaNs are interpolated).

    InsufficientHistory (a ValueError) when the values, leading and trailing NaNs left out, cover less
    than ``history_needed``."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if step_seconds <= 0 or horizon_seconds <= 0:
        raise ValueError("step_seconds and horizon_seconds must be positive")
    y = _fill(np.asarray(values, float))
    needed = history_needed(horizon_seconds, step_seconds)
    if y.size * step_seconds < needed:
        raise InsufficientHistory(needed, y.size * step_seconds, horizon_seconds)
    h = max(1, math.ceil(horizon_seconds / step_seconds))
    m = detect_period(y, step_seconds)
    level, trend, season, errors, params = _fit(y, m)
    alpha, beta, gamma, phi = params

    k = np.arange(1, h + 1)
    damped = np.cumsum(phi**k)  # phi + phi^2 + ... + phi^k: the trend's share k steps ahead
    mean = level + damped * trend
    if m:
        mean = mean + season[(len(y) + k - 1) % m]
    # ETS(A,Ad,A) k-step error variance: sigma^2 (1 + sum_{j<k} c_j^2), c_j = alpha + beta (phi + ... +
    # phi^j) + gamma [m | j] (Hyndman et al. 2008, table 6.1).
    c = alpha + beta * damped[: h - 1] + (gamma * (k[: h - 1] % m == 0) if m else 0.0)
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


def _fit(
    y: np.ndarray, m: int
) -> tuple[float, float, np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """Run every candidate (alpha, beta, gamma, phi) at once; keep the one with the least one-step error."""
    grid = np.array(list(itertools.product(_ALPHAS, _BETAS, _GAMMAS if m else (0.0,), _PHIS)))
    a, b, g, phi = grid[:, 0], grid[:, 1], grid[:, 2], grid[:, 3]
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
        damped = phi * trend
        e = y[i] - (level + damped + s_i)
        errors[i - start] = e
        level = level + damped + a * e
        trend = damped + b * e
        if m:
            season[rows, i % m] = s_i + g * e
    best = int(np.argmin(np.mean(errors[len(errors) // 4 :] ** 2, axis=0)))
    return (
        float(level[best]),
        float(trend[best]),
        season[best],
        errors[:, best],
        (float(a[best]), float(b[best]), float(g[best]), float(phi[best])),
    )
