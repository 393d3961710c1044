"""Online anomaly scores for many series at once, with all state in numpy arrays.

Each series is modelled as robust level + (detected) daily and weekly seasonal profiles. Every new
sample is compared with the value predicted *before* it was seen (so the score at time t only uses data
up to t); the deviation, divided by a robust spread, is turned into a tail probability and that into a
score in [0, 1]. Everything is vectorised across series: ``update`` does a fixed number of numpy
operations whatever the number of series, so the service can score 100k series per cycle on one core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr

DAY = 86_400.0
WEEK = 7 * DAY

# Score s means "a deviation this large (sustained) has tail probability 10 ** (-SCORE_DECADES * s)".
SCORE_DECADES = 6.0

# Alarm thresholds on the score, i.e. on the tail probability: low 1e-5.4, medium 1e-4.5, high 1e-3.6.
SENSITIVITY: dict[str, float] = {"low": 0.9, "medium": 0.75, "high": 0.6}

DEFAULT_WARMUP = 150

_DAILY_BINS = 48  # 30-minute bins: fine enough for 5-minute data, small enough for 100k series
_WEEKLY_BINS = 56  # 3-hour bins over the week

# Float state per series (name -> initial value) and the seasonal profiles (name -> bins).
_SCALARS: dict[str, float] = {
    "count": 0.0,
    "t_last": np.nan,
    "level": np.nan,
    "abs_mean": 0.0,  # EW mean of |x|, for a spread floor relative to the series' size
    "err_flat": np.nan,  # EW mean |residual| of each candidate model
    "err_daily": np.nan,
    "err_weekly": np.nan,
    "run": 0.0,  # signed count of consecutive large same-sign residuals (level-shift detector)
    "short": 0.0,  # short-term mean of the raw surprise
    "long_mean": 0.0,  # long-run mean / variance of the short-term mean (calibration)
    "long_var": 1.0,
}
_PROFILES: dict[str, int] = {"daily": _DAILY_BINS, "weekly": _WEEKLY_BINS}


@dataclass(frozen=True)
class Params:
    """Model constants: one configuration for every series (tuned on principle, see docs/anomaly-model.md)."""

    alpha_level: float = 0.1
    alpha_err: float = 0.02
    alpha_season: float = 0.1
    alpha_short: float = 0.3
    alpha_long: float = 0.002
    clip: float = 4.0  # residuals are winsorised at clip x spread before they update the model
    shift_run: float = 6.0  # this many consecutive large same-sign residuals -> treat as a level shift
    season_gain: float = 0.9  # a seasonal model must cut the error by 10% to be chosen


@dataclass(frozen=True)
class Scores:
    """Result of one ``update``: arrays aligned with the indices passed in."""

    score: np.ndarray
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    alarm: np.ndarray


def sensitivity_threshold(sensitivity: str) -> float:
    """Score threshold of a preset; a bad name raises ValueError naming the valid ones."""
    try:
        return SENSITIVITY[sensitivity]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown sensitivity {sensitivity!r}: choose one of {', '.join(SENSITIVITY)}"
        ) from None


class DetectorBank:
    """Detectors for many series; series are slots in the state arrays, reused after ``remove``."""

    def __init__(
        self, sensitivity: str = "medium", warmup: int = DEFAULT_WARMUP, params: Params | None = None
    ) -> None:
        self.threshold = sensitivity_threshold(sensitivity)
        if int(warmup) < 0:
            raise ValueError(f"warmup must be >= 0 samples, got {warmup}")
        self.sensitivity = sensitivity
        self.warmup = int(warmup)
        self.params = params or Params()
        self._s: dict[str, np.ndarray] = {k: np.empty(0) for k in _SCALARS}
        self._p: dict[str, np.ndarray] = {k: np.empty((0, b), np.float32) for k, b in _PROFILES.items()}
        self._used = np.zeros(0, bool)

    # -- series management -------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self._used.size

    def __len__(self) -> int:
        return int(self._used.sum())

    def add(self, n: int) -> np.ndarray:
        """Allocate ``n`` fresh series; returns their indices (free slots first, then new ones)."""
        free = np.flatnonzero(~self._used)[:n]
        missing = n - free.size
        if missing > 0:
            old = self.capacity
            self._grow(max(old * 2, old + missing, 64))
            free = np.concatenate([free, np.arange(old, old + missing)])
        self._reset(free)
        self._used[free] = True
        return free

    def remove(self, idx: np.ndarray) -> None:
        """Forget series; their slots are reused by later ``add`` calls."""
        idx = np.asarray(idx, np.intp)
        self._reset(idx)
        self._used[idx] = False

    def _grow(self, capacity: int) -> None:
        extra = capacity - self.capacity
        for k, init in _SCALARS.items():
            self._s[k] = np.concatenate([self._s[k], np.full(extra, init)])
        for k, bins in _PROFILES.items():
            self._p[k] = np.concatenate([self._p[k], np.zeros((extra, bins), np.float32)])
        self._used = np.concatenate([self._used, np.zeros(extra, bool)])

    def _reset(self, idx: np.ndarray) -> None:
        for k, init in _SCALARS.items():
            self._s[k][idx] = init
        for k in _PROFILES:
            self._p[k][idx] = 0.0

    # -- scoring ---------------------------------------------------------------------------------

    def update(self, idx: np.ndarray, t: float | np.ndarray, x: np.ndarray) -> Scores:
        """Score one new sample per series (NaN = missing: score 0, state unchanged), then learn it."""
        p = self.params
        idx = np.asarray(idx, np.intp)
        x = np.asarray(x, float)
        t = np.broadcast_to(np.asarray(t, float), x.shape)
        s = {k: v[idx] for k, v in self._s.items()}
        bd = ((t % DAY) * (_DAILY_BINS / DAY)).astype(np.intp) % _DAILY_BINS
        bw = ((t % WEEK) * (_WEEKLY_BINS / WEEK)).astype(np.intp) % _WEEKLY_BINS
        sd = self._p["daily"][idx, bd].astype(float)
        sw = self._p["weekly"][idx, bw].astype(float)

        ok = np.isfinite(x) & np.isfinite(t)
        first = ok & (s["count"] == 0)
        level = np.where(first, x, s["level"])
        abs_mean = np.where(first, np.abs(x), s["abs_mean"])
        floor = 1e-3 * abs_mean + 1e-9

        # Predictions of the three candidate models, made before x is seen.
        preds = np.stack([level, level + sd, level + sd + sw])
        errs = np.stack([s["err_flat"], s["err_daily"], s["err_weekly"]])
        model = _choose(errs, p.season_gain)
        expected = np.take_along_axis(preds, model[None], 0)[0]
        spread = np.maximum(np.take_along_axis(errs, model[None], 0)[0], floor)
        spread = np.where(np.isfinite(spread), spread, np.maximum(0.1 * abs_mean, floor))

        resid = x - expected
        z = np.where(ok & ~first, np.abs(resid) / spread, 0.0)

        # Calibration: the short-term mean of a bounded surprise, compared with its long-run
        # distribution, gives a tail probability (the "anomaly likelihood" idea of Ahmad et al. 2017).
        raw = np.minimum(z, 3 * p.clip)
        short = np.where(ok, s["short"] + p.alpha_short * (raw - s["short"]), s["short"])
        dev = (short - s["long_mean"]) / np.sqrt(np.maximum(s["long_var"], 1e-6))
        log_p = np.minimum(_log10_tail(z), _log10_upper_gauss(dev))
        score = np.clip(-log_p / SCORE_DECADES, 0.0, 1.0)
        score = np.where(ok & ~first, score, 0.0)

        # Learn. Early on the rates are 1/n (plain running means), later the fixed EW rates.
        n = s["count"]
        a_e = np.maximum(p.alpha_err, 1.0 / np.maximum(n, 1.0))
        a_l = np.maximum(p.alpha_level, 1.0 / (n + 1.0))
        e_all = np.abs(x - preds)
        e_clip = np.minimum(e_all, p.clip * np.where(np.isfinite(errs), errs, e_all))
        new_errs = np.where(np.isfinite(errs), errs + a_e * (e_clip - errs), e_all)
        new_errs = np.where(first, errs, new_errs)
        big = np.abs(resid) > p.clip * spread
        sign = np.sign(resid)
        run = np.where(big, np.where(sign == np.sign(s["run"]), s["run"] + sign, sign), 0.0)
        shifted = np.abs(run) >= p.shift_run
        step = np.clip(resid, -p.clip * spread, p.clip * spread)
        new_level = np.where(shifted, x - (expected - level), level + a_l * step)
        season_resid = np.clip(x - level - sd - sw, -p.clip * spread, p.clip * spread)
        sd_new = sd + p.alpha_season * season_resid
        sw_new = sw + p.alpha_season * np.clip(x - level - sd_new - sw, -p.clip * spread, p.clip * spread)

        lm, lv = s["long_mean"], s["long_var"]
        d = short - lm
        new_lm = lm + p.alpha_long * d
        new_lv = (1 - p.alpha_long) * (lv + p.alpha_long * d * d)

        upd = {
            "count": s["count"] + 1,
            "t_last": t,
            "level": new_level,
            "abs_mean": abs_mean + a_l * (np.abs(x) - abs_mean),
            "err_flat": new_errs[0],
            "err_daily": new_errs[1],
            "err_weekly": new_errs[2],
            "run": np.where(shifted, 0.0, run),
            "short": short,
            "long_mean": new_lm,
            "long_var": new_lv,
        }
        for k, v in upd.items():
            self._s[k][idx] = np.where(ok, v, s[k])
        okd = ok & ~first
        self._p["daily"][idx[okd], bd[okd]] = sd_new[okd]
        self._p["weekly"][idx[okd], bw[okd]] = sw_new[okd]

        band = self._band() * spread
        alarm = (score >= self.threshold) & (s["count"] >= self.warmup) & ok
        return Scores(score, expected, expected - band, expected + band, alarm)

    def _band(self) -> float:
        """Half-width of the expected band, in spreads: the deviation that alone reaches the threshold."""
        return self.threshold * SCORE_DECADES * np.log(10.0)

    # -- persistence -----------------------------------------------------------------------------

    def state(self) -> dict[str, np.ndarray]:
        """All state as arrays (e.g. for ``np.savez``); ``from_state`` restores it exactly."""
        out = {f"s_{k}": v.copy() for k, v in self._s.items()}
        out |= {f"p_{k}": v.copy() for k, v in self._p.items()}
        out["used"] = self._used.copy()
        out["sensitivity"] = np.array(self.sensitivity)
        out["warmup"] = np.array(self.warmup)
        out["params"] = np.array([getattr(self.params, f) for f in Params.__dataclass_fields__])
        return out

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> DetectorBank:
        names = list(Params.__dataclass_fields__)
        params = Params(**dict(zip(names, map(float, state["params"]), strict=True)))
        bank = cls(str(state["sensitivity"]), int(state["warmup"]), params)
        bank._s = {k: np.array(state[f"s_{k}"], float) for k in _SCALARS}
        bank._p = {k: np.array(state[f"p_{k}"], np.float32) for k in _PROFILES}
        bank._used = np.array(state["used"], bool)
        return bank


def _choose(errs: np.ndarray, gain: float) -> np.ndarray:
    """Index of the model to trust: a seasonal one only once it beats the simpler one by ``gain``."""
    e = np.where(np.isfinite(errs), errs, np.inf)
    model = np.zeros(errs.shape[1], np.intp)
    model = np.where(e[1] < gain * e[0], 1, model)
    best = np.take_along_axis(e, model[None], 0)[0]
    return np.where(e[2] < gain * best, 2, model)


def _log10_tail(z: np.ndarray) -> np.ndarray:
    """log10 of exp(-z): Laplace tail probability of a deviation of z mean-absolute-deviations."""
    return -z / np.log(10.0)


def _log10_upper_gauss(z: np.ndarray) -> np.ndarray:
    """log10 of the Gaussian upper tail probability of z."""
    return log_ndtr(-z) / np.log(10.0)
