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
from scipy.special import log_ndtr, ndtri

DAY = 86_400.0
WEEK = 7 * DAY

# A score s means the deviation, judged against the series' own history of deviations, has tail
# probability 10 ** (-SCORE_DECADES * -ln(1 - s)): 0.5 -> 10^-2.1, 0.75 -> 10^-4.2, 0.9 -> 10^-6.9.
SCORE_DECADES = 3.0

# Alarm thresholds on the score. medium is about the threshold NAB's standard profile picks for this
# detector (benchmarks/bench_nab.py); high alarms earlier and more often, low only on the clearest cases.
SENSITIVITY: dict[str, float] = {"low": 0.95, "medium": 0.9, "high": 0.8}

DEFAULT_WARMUP = 150

_DAILY_BINS = 288  # 10-minute bins over the day
_WEEKLY_BINS = 168  # hourly bins over the week

# Float state per series (name -> initial value) and the seasonal profiles (name -> bins).
_SCALARS: dict[str, float] = {
    "count": 0.0,
    "t_first": np.nan,
    "t_last": np.nan,
    "level": np.nan,  # fast robust level: the non-seasonal model
    "abs_mean": 0.0,  # EW mean of |x|, for a spread floor relative to the series' size
    "c_daily": 0.0,  # recent offset of the series from its daily / weekly profile
    "c_weekly": 0.0,
    "err_flat": np.nan,  # EW mean |residual| of each candidate model (the spread)
    "err_daily": np.nan,
    "err_weekly": np.nan,
    "mse_flat": np.nan,  # EW mean squared residual (winsorised): which model to trust
    "mse_daily": np.nan,
    "mse_weekly": np.nan,
    "run": 0.0,  # signed count of consecutive large same-sign residuals (level-shift detector)
    "short": 0.0,  # short-term mean of the signed standardised residual
    "peak": 0.0,  # decaying maximum of recent deviations (one alarm per episode)
    "u_mean": 0.0,  # long-run mean / variance of u = log(1 + z) and of |short| (calibration)
    "u_var": 0.0,
    "s_mean": 0.0,
    "s_var": 0.0,
}
_MODELS = ("flat", "daily", "weekly")
_FIRST = {"count", "t_first", "t_last", "level", "abs_mean"}  # what the first sample of a series sets
_PROFILES: dict[str, int] = {"daily": _DAILY_BINS, "weekly": _WEEKLY_BINS}


@dataclass(frozen=True)
class Params:
    """Model constants: one configuration for every series (tuned on principle, see docs/anomaly-model.md)."""

    alpha_level: float = 0.1
    alpha_err: float = 0.02
    alpha_season: float = 0.2
    alpha_short: float = 0.1
    alpha_long: float = 0.0001
    w_short: float = 1.0
    calib_cap: float = 100.0  # surprises are capped at mean + calib_cap sd before entering the calibration
    suppress: float = 0.5
    peak_decay: float = 0.98
    peak_floor: float = 3.0  # recent deviations below this (ordinary noise) do not suppress
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
            self._p[k] = np.concatenate([self._p[k], np.full((extra, bins), np.nan, np.float32)])
        self._used = np.concatenate([self._used, np.zeros(extra, bool)])

    def _reset(self, idx: np.ndarray) -> None:
        for k, init in _SCALARS.items():
            self._s[k][idx] = init
        for k in _PROFILES:
            self._p[k][idx] = np.nan

    # -- scoring ---------------------------------------------------------------------------------

    def update(self, idx: np.ndarray, t: float | np.ndarray, x: np.ndarray) -> Scores:
        """Score one new sample per series (NaN = missing: score 0, state unchanged), then learn it."""
        p = self.params
        idx = np.asarray(idx, np.intp)
        x = np.broadcast_to(np.asarray(x, float), idx.shape)
        t = np.broadcast_to(np.asarray(t, float), idx.shape)
        s = {k: v[idx] for k, v in self._s.items()}
        bd = ((t % DAY) * (_DAILY_BINS / DAY)).astype(np.intp) % _DAILY_BINS
        bw = ((t % WEEK) * (_WEEKLY_BINS / WEEK)).astype(np.intp) % _WEEKLY_BINS
        pd = self._p["daily"][idx, bd].astype(float)
        pw = self._p["weekly"][idx, bw].astype(float)

        ok = np.isfinite(x) & np.isfinite(t)
        first = ok & (s["count"] == 0)
        live = ok & ~first
        level = np.where(first, x, s["level"])
        abs_mean = np.where(first, np.abs(x), s["abs_mean"])
        floor = 1e-3 * abs_mean + 1e-9

        # Predictions of the three candidate models, made before x is seen. A seasonal profile bin
        # holds the typical value at that time of day (week); never-seen bins fall back to simpler models.
        pred_d = np.where(np.isfinite(pd), pd + s["c_daily"], level)
        pred_w = np.where(np.isfinite(pw), pw + s["c_weekly"], pred_d)
        preds = np.stack([level, pred_d, pred_w])
        errs = np.stack([s[f"err_{m}"] for m in _MODELS])
        model = _choose(np.stack([s[f"mse_{m}"] for m in _MODELS]), p.season_gain)
        expected = np.take_along_axis(preds, model[None], 0)[0]
        spread = np.maximum(np.take_along_axis(errs, model[None], 0)[0], floor)
        spread = np.where(np.isfinite(spread), spread, np.maximum(0.1 * abs_mean, floor))

        resid = x - expected
        z = np.where(live, np.abs(resid) / spread, 0.0)

        # Calibration ("anomaly likelihood", Ahmad et al. 2017): the surprise u = log(1 + z), now and
        # as a short-term mean, is compared with its own long-run distribution, so one threshold
        # means the same tail probability on a noisy series as on a quiet one.
        n = s["count"]
        u = np.log1p(z)
        signed = np.where(live, resid / spread, 0.0)
        signed = np.clip(signed, -p.clip, p.clip)
        short = s["short"] + p.alpha_short * (signed - s["short"])
        u_s = np.abs(short)
        dev_u = (u - s["u_mean"]) / np.sqrt(s["u_var"] + 1e-4)
        dev_s = (u_s - s["s_mean"]) / np.sqrt(s["s_var"] + 1e-4)
        # A deviation is news only if it exceeds what this series did recently: one alarm per episode.
        dev = np.maximum(dev_u, p.w_short * dev_s)
        news = dev - p.suppress * np.maximum(s["peak"] - p.peak_floor, 0.0)
        log_p = _log10_upper_gauss(news)
        score = np.where(live & (n >= 3), _score(log_p), 0.0)

        # Learn. Early on the rates are 1/n (plain running means), later the fixed EW rates; a
        # seasonal bin is seen once per period, so its rate is 1/periods-seen until alpha_season.
        a_e = np.maximum(p.alpha_err, 1.0 / np.maximum(n, 1.0))
        a_l = np.maximum(p.alpha_level, 1.0 / (n + 1.0))
        age = np.where(np.isfinite(s["t_first"]), t - s["t_first"], 0.0)
        a_d = np.maximum(p.alpha_season, 1.0 / (1.0 + np.floor(age / DAY)))
        a_w = np.maximum(p.alpha_season, 1.0 / (1.0 + np.floor(age / WEEK)))
        lim = p.clip * spread

        e_all = np.abs(x - preds)
        cap = p.clip * np.where(np.isfinite(errs), errs, e_all)
        e_clip = np.minimum(e_all, cap)
        new_errs = np.where(np.isfinite(errs), errs + a_e * (e_clip - errs), e_all)
        mses = np.stack([s[f"mse_{m}"] for m in _MODELS])
        new_mses = np.where(np.isfinite(mses), mses + a_e * (e_clip**2 - mses), e_all**2)
        big = np.abs(resid) > lim
        sign = np.sign(resid)
        run = np.where(big, np.where(sign == np.sign(s["run"]), s["run"] + sign, sign), 0.0)
        shifted = np.abs(run) >= p.shift_run
        # Level and offsets follow x (winsorised); a confirmed level shift moves them at once.
        new_level = np.where(shifted, x, level + a_l * np.clip(x - level, -lim, lim))
        c_d = np.where(np.isfinite(pd), s["c_daily"] + a_l * np.clip(x - pd - s["c_daily"], -lim, lim), 0.0)
        c_w = np.where(np.isfinite(pw), s["c_weekly"] + a_l * np.clip(x - pw - s["c_weekly"], -lim, lim), 0.0)
        c_d = np.where(shifted & np.isfinite(pd), x - pd, c_d)
        c_w = np.where(shifted & np.isfinite(pw), x - pw, c_w)
        pd_new = np.where(np.isfinite(pd), pd + a_d * np.clip(x - pd, -lim, lim), x)
        pw_new = np.where(np.isfinite(pw), pw + a_w * np.clip(x - pw, -lim, lim), x)

        a_c = np.maximum(p.alpha_long, 1.0 / np.maximum(n, 1.0))
        u_mean, u_var = _ew_moments(s["u_mean"], s["u_var"], u, a_c, p.calib_cap)
        s_mean, s_var = _ew_moments(s["s_mean"], s["s_var"], u_s, a_c, p.calib_cap)

        upd = {
            "count": s["count"] + 1,
            "t_first": np.where(first, t, s["t_first"]),
            "t_last": t,
            "level": new_level,
            "abs_mean": abs_mean + a_l * (np.abs(x) - abs_mean),
            "c_daily": c_d,
            "c_weekly": c_w,
            **{f"err_{m}": new_errs[k] for k, m in enumerate(_MODELS)},
            **{f"mse_{m}": new_mses[k] for k, m in enumerate(_MODELS)},
            "run": np.where(shifted, 0.0, run),
            "short": short,
            "peak": np.maximum(dev, s["peak"] * p.peak_decay),
            "u_mean": u_mean,
            "u_var": u_var,
            "s_mean": s_mean,
            "s_var": s_var,
        }
        for k, v in upd.items():
            self._s[k][idx] = np.where(live | (first & (k in _FIRST)), v, s[k])
        self._p["daily"][idx[ok], bd[ok]] = pd_new[ok]
        self._p["weekly"][idx[ok], bw[ok]] = pw_new[ok]

        band = self._band(s["u_mean"], s["u_var"]) * spread
        alarm = (score >= self.threshold) & (s["count"] >= self.warmup) & ok
        return Scores(score, expected, expected - band, expected + band, alarm)

    def _band(self, u_mean: np.ndarray, u_var: np.ndarray) -> np.ndarray:
        """Half-width of the expected band, in spreads: the deviation that alone reaches the threshold."""
        log10_p = SCORE_DECADES * np.log1p(-self.threshold)
        dev = -ndtri(10.0**log10_p)
        return np.expm1(u_mean + dev * np.sqrt(u_var + 1e-4))

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


def _ew_moments(
    mean: np.ndarray, var: np.ndarray, v: np.ndarray, a: np.ndarray, cap: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exponentially weighted mean and variance; v is capped at mean + cap sd so outliers do not dominate."""
    v = np.minimum(v, mean + cap * np.sqrt(var) + 1e-2)
    d = v - mean
    return mean + a * d, (1.0 - a) * (var + a * d * d)


def _score(log10_p: np.ndarray) -> np.ndarray:
    """Map a tail probability to [0, 1): monotone, never saturating (ranks stay distinct)."""
    return -np.expm1(log10_p / SCORE_DECADES)


def _log10_upper_gauss(z: np.ndarray) -> np.ndarray:
    """log10 of the Gaussian upper tail probability of z."""
    return log_ndtr(-z) / np.log(10.0)
