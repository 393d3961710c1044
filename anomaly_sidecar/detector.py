"""Online anomaly scores for many series at once, with all state in numpy arrays.

Each series has three candidate models: a robust level, a daily profile and a weekly profile (typical
value per time-of-day / time-of-week bin, plus a recent offset). The model with the least recent error is
trusted, so seasonality is detected from the data, never assumed. Every sample is compared with the value
predicted *before* it was seen (the score at time t uses data up to t only). Two surprises are measured:
the standardised deviation now (spikes) and a short-term mean of signed deviations (level shifts); each
is judged against that series' own long-run distribution of it ("anomaly likelihood"), so one threshold
means the same on quiet and noisy series, and a deviation counts as news only if it exceeds what the
series did in the last few dozen samples (one alarm per episode, not one per sample). A spike counts more
on a series that is rarely surprised at all (a bounded, Numenta-style "was this expected at all"
surprise, calibrated the same way) than on a bursty one. A slow view (a ~24-sample mean against a slowly
adapting expectation, with its own one-alarm-per-episode rule) finds what the fast models absorb within
a few samples: a holiday, a slow drift. A spike of the usual size at the usual interval after the
last ones (a cron job, whatever its period) is routine, not news. When the fast and the slow view
agree, their evidence adds up; after an alarm, nothing smaller is news for a while. On a series that
idles at zero and bursts, a burst is judged against the usual burst, not against the idle spread. A new
record (a value beyond every value seen so far, by 5% of that range) that is also a clear deviation is
news in itself and scores 1, even on a series whose routine spikes have taught the calibration to shrug;
so does a confirmed level shift that holds its new level, once per episode, on a series that rarely
shifts (a step smeared by rate() is otherwise a string of near misses).

Everything is vectorised across series: ``update`` does a fixed number of numpy operations whatever the
number of series. Memory per series: 42 float64 scalars + (144 + 168) float32 bins + 3 x 8 float32
recent large surprises = 1,680 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.special import log_ndtr, ndtri

from tenantpulse.conventions.sensitivity import SENSITIVITY

DAY = 86_400.0
WEEK = 7 * DAY

# The score is a monotone map of the Gaussian tail p of the calibrated deviation:
# s = 1 - exp(log10(p) / SCORE_DECADES), so 0.5 <-> p = 1e-8.3, 0.8 <-> 1e-19.3, 0.9 <-> 1e-27.6.
# (p is a ranking device on the heavy-tailed deviations, not a literal false-alarm rate.)
SCORE_DECADES = 12.0


DEFAULT_WARMUP = 150  # samples before alarms (scores are computed from the second sample on)

_DAILY_BINS = 144  # 10-minute bins over the day
_WEEKLY_BINS = 168  # hourly bins over the week
_MODELS = ("flat", "daily", "weekly")

# Float state per series (name -> initial value); the seasonal profiles are float32 (n, bins) arrays.
_SCALARS: dict[str, float] = {
    "count": 0.0,
    "t_first": np.nan,
    "level": np.nan,  # fast robust level: the non-seasonal model
    "abs_mean": 0.0,  # EW mean of |x|, for a spread floor relative to the series' size
    "err_long": np.nan,  # slow EW mean |residual|, bursts included: the floor on intermittent series
    "c_daily": 0.0,  # recent offset of the series from its daily / weekly profile
    "c_weekly": 0.0,
    "err_flat": np.nan,  # EW mean |residual| of each model: the spread that standardises deviations
    "err_daily": np.nan,
    "err_weekly": np.nan,
    "mse_flat": np.nan,  # EW mean squared residual (winsorised): which model to trust
    "mse_daily": np.nan,
    "mse_weekly": np.nan,
    "run": 0.0,  # signed count of consecutive large same-sign residuals (level-shift detector)
    "short": 0.0,  # short-term mean of the signed standardised residual
    "peak": 0.0,  # decaying maximum of recent deviations (one alarm per episode)
    # Long-run mean / variance of z and of |short| (calibration). Initial values are what Gaussian
    # noise would give; they act as a prior worth ``Params.prior_n`` samples.
    "z_mean": 1.0,
    "z_var": 0.57,
    "s_mean": 0.23,
    "s_var": 0.03,
    # Bounded surprise (HTM-style): short mean of min-saturated raw surprise, and its long-run mean /
    # variance (NaN until the first sample: then the Gaussian-noise prior of ``_htm_prior``).
    "h_short": np.nan,
    "h_mean": np.nan,
    "h_var": np.nan,
    "lo": np.nan,  # lowest and highest values seen: a new record beyond them is news in itself
    "hi": np.nan,
    # Slow view: slow offsets of the three models, a rolling mean of the residual against the slow
    # prediction (about block_m samples), its spread, its calibration, its own recent alarm peak,
    # and the slow mean squared residual of each model (which model the slow view trusts).
    "sl_lvl": np.nan,
    "sl_cd": 0.0,
    "sl_cw": 0.0,
    "sl_r": 0.0,
    "sl_err": np.nan,
    "b_mean": 1.0,
    "b_var": 0.57,
    "peak_sl": 0.0,
    "sm_flat": np.nan,
    "sm_daily": np.nan,
    "sm_weekly": np.nan,
    "ev_max": 0.0,  # decaying largest |residual| of recent large surprises (recurring spikes)
    "ev_i": 0.0,  # ring slot of the next large surprise
    "peak_al": 0.0,  # decaying size of the last alarm (one alarm per episode on bursty series)
    "al_age": np.inf,  # samples since the last alarm: a level shift inside an alarmed episode is not news
    "sh_age": np.inf,  # samples since the last confirmed level shift: frequent shifts are routine
    "run_pk": 0.0,  # largest |residual| of the current run of large same-sign residuals
}
# What the first sample of a series sets.
_FIRST = {"count", "t_first", "level", "abs_mean", "lo", "hi", "sl_lvl"}
# Recent large surprises per series (a ring): age since the first sample (s), signed size above the
# level, and the gap (s) to the previous similar one. float32: ages of years keep a precision of seconds.
_EVENTS = 8
_PROFILES: dict[str, int] = {
    "daily": _DAILY_BINS,
    "weekly": _WEEKLY_BINS,
    "ev_t": _EVENTS,
    "ev_r": _EVENTS,
    "ev_g": _EVENTS,
}


@dataclass(frozen=True)
class Params:
    """Model constants: one configuration for every series (see docs/anomaly-model.md for the why)."""

    alpha_level: float = 0.2  # fast level and profile offsets: follow the series within a few samples
    alpha_err: float = 0.02  # spreads: about the last 50 samples
    alpha_season: float = 0.2  # profile bins, once a few periods have been seen (1/periods before)
    alpha_short: float = 0.1  # the signed short-term mean: about the last 10 samples
    alpha_long: float = 0.0001  # calibration: the whole history (1/n) up to about 10,000 samples
    prior_n: float = 20.0  # weight of the Gaussian prior in the calibration, in samples
    w_short: float = 1.5  # weight of a sustained shift relative to a single-sample spike
    w_both: float = 0.5  # extra weight when spike and shift agree
    suppress: float = 0.5  # how much of a recent alarm-sized deviation a new one must exceed
    peak_decay: float = 0.99  # per sample: a recent episode is forgotten over a few hundred samples
    peak_cap: float = 100.0  # one enormous deviation must not mute the series for thousands of samples
    calib_cap: float = 100.0  # nor swamp its calibration: surprises enter it capped at mean + 100 sd
    peak_floor: float = 3.0  # recent deviations below this (ordinary noise) do not suppress
    clip: float = 6.0  # residuals are winsorised at clip x spread before they update the model
    shift_run: float = 6.0  # this many consecutive large same-sign residuals -> a level shift
    # A confirmed level shift (the run above) is news in itself: a step smeared over several samples
    # by rate() is otherwise a string of near misses, each muted by the one before. It scores
    # shift_score unless the series alarmed within the last shift_quiet samples (the same episode) or
    # shifted within the last shift_gap (after its warm-up): on a series that switches between levels
    # (an agent going idle and busy) shifts are routine.
    shift_score: float = 1.0
    shift_quiet: float = 24.0
    shift_gap: float = 300.0
    # ... and only if the series holds its new level: the residual that confirms the run must be at
    # least shift_hold of the largest residual of the run. A burst that has already decayed to a
    # fraction of its peak (tweet volumes, a retry storm dying out) is a transient, not a step; its
    # peak was judged by the spike view. A step, even one smeared by rate(), rises to its level and
    # stays there, so its last residual is its largest.
    shift_hold: float = 0.5
    season_gain: float = 0.9  # a seasonal model must cut the squared error by 10% to be chosen
    # A new record (beyond every value seen, by record_tol of the range seen, as the "spatial anomaly"
    # of Numenta's NAB detector) that is also a clear deviation (calibrated deviation >= record_z, so
    # the record of a trend the model follows is not news) scores record_score, the top, once the
    # range rests on record_after samples of history.
    record_tol: float = 0.05
    record_z: float = 6.0
    record_after: float = 200.0
    record_score: float = 1.0
    # ... and it must be at least record_raw spreads from the expected value: the maxima of skewed,
    # discrete noise (an error ratio of a few events per rate window) are records of the series too.
    record_raw: float = 4.0
    # Bounded surprise, as in Numenta's anomaly likelihood: raw = 1 - exp(-(z / htm_c)^2) in [0, 1]
    # saturates, so a 5-sigma and a 100-sigma sample are equally "unexpected"; its short mean (alpha_htm,
    # about 10 samples) is judged against its own long-run mean and variance in this series. A spike
    # gains that calibrated deviation (times w_htm, at most the spike itself): a spike on a series that
    # is rarely surprised at all counts more than one on a series surprised every few samples (bursty
    # tweet volumes). The total is divided by htm_scale so the score presets keep their meaning.
    w_htm: float = 1.25
    htm_c: float = 3.0
    alpha_htm: float = 0.1
    htm_scale: float = 1.25
    # Slow view: the mean of about block_m samples against a slowly adapting prediction (profile +
    # offset learnt at alpha_slow, model chosen by a slow squared error learnt at alpha_slow_err),
    # standardised by its own spread and calibrated like the other surprises; weight w_slow. It
    # finds what the fast models absorb within a few samples: a holiday, a slow drift. It has its own
    # one-alarm-per-episode suppression: muted only by its own earlier alarm (news of at least
    # slow_fire), not by the fast peak.
    w_slow: float = 2.5
    block_m: float = 24.0
    alpha_slow: float = 0.003
    alpha_slow_err: float = 0.005
    slow_fire: float = 10.0
    # A slow deviation grows over many samples: to be news again it must exceed all (slow_supp = 1, not
    # half) of its own earlier alarm, else a steadily growing episode alarms again and again.
    slow_supp: float = 1.0
    slow_decay: float = 0.99  # per-sample decay of that earlier alarm
    # The slow mean's spread is at least what white noise at the fast spread gives it (sqrt(a/(2-a)) x
    # spread), so a long quiet stretch (a series of zeros) does not make every small blip a slow anomaly.
    slow_floor: float = 1.0
    # Recurring spikes are not news. A large surprise (raw z >= rt_min, and at least rt_frac of the
    # largest recent one, which decays by rt_decay per sample) is an event. An event of about the same
    # signed size above the level (within rt_size) as remembered ones, coming one usual gap after the last of them
    # (within rt_gap), where that gap already separated similar events at least rt_m times, is routine:
    # its deviation is multiplied by rt_keep. Period-agnostic: a daily cron spike with
    # +-15 min jitter and a spike every 100 samples alike; a spike sooner than usual is not routine.
    rt_keep: float = 0.0
    rt_min: float = 6.0
    rt_frac: float = 0.5
    rt_decay: float = 0.999
    rt_size: float = 0.25
    rt_gap: float = 0.05
    rt_m: float = 2.0
    # Agreement of the fast view (spike / shift, after its suppression) and the slow view (after its
    # own): when both see something, the weaker adds w_agree of itself to the stronger, so a moment
    # where each view alone is a near miss (a burst that is also a slow level change) is news. The
    # score divides the total by agree_scale so that NAB's standard profile still picks about the
    # medium preset; the price is that an event seen by one view alone needs 1.2x the deviation.
    w_agree: float = 0.75
    agree_scale: float = 1.2
    # One alarm per episode, at the alarm level: once the series has alarmed (shown news reaching
    # al_fire, about the medium preset), a later sample is news only by how much it exceeds al_supp x
    # that alarm's size (decaying by al_decay per sample; below al_floor it no longer suppresses). The
    # fast suppression above forgives half of any recent deviation; this forgives none of an actual
    # alarm, so a burst that rises over several samples (tweet volumes) alarms once, not at each step.
    al_supp: float = 1.0
    al_decay: float = 0.99
    al_floor: float = 3.0
    al_fire: float = 11.0
    # Spread floor on intermittent series (zeros with bursts): the spread is at least floor_rel x the
    # long-run mean |residual| (rate alpha_slow, bursts included, each capped at peak_cap spreads), so
    # a burst after a quiet stretch is not a 1e16-sigma event each time.
    floor_rel: float = 0.05


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
        ok = np.isfinite(x) & np.isfinite(t)
        first = ok & (s["count"] == 0)
        live = ok & ~first
        n = s["count"]
        bd = ((np.where(ok, t, 0.0) % DAY) * (_DAILY_BINS / DAY)).astype(np.intp) % _DAILY_BINS
        bw = ((np.where(ok, t, 0.0) % WEEK) * (_WEEKLY_BINS / WEEK)).astype(np.intp) % _WEEKLY_BINS
        pd = self._p["daily"][idx, bd].astype(float)
        pw = self._p["weekly"][idx, bw].astype(float)
        level = np.where(first, x, s["level"])
        abs_mean = np.where(first, np.abs(x), s["abs_mean"])
        err_long = s["err_long"]
        floor = np.maximum(1e-3 * abs_mean, p.floor_rel * np.nan_to_num(err_long)) + 1e-9

        # Predictions of the three models, made before x is seen; a never-seen bin falls back.
        pred_d = np.where(np.isfinite(pd), pd + s["c_daily"], level)
        pred_w = np.where(np.isfinite(pw), pw + s["c_weekly"], pred_d)
        preds = np.stack([level, pred_d, pred_w])
        errs = np.stack([s[f"err_{m}"] for m in _MODELS])
        mses = np.stack([s[f"mse_{m}"] for m in _MODELS])
        model = _choose(mses, p.season_gain)
        expected = np.take_along_axis(preds, model[None], 0)[0]
        spread = np.take_along_axis(errs, model[None], 0)[0]
        # A series that has not changed yet (errors all zero) has no scale: its first change is
        # scored against the floor, but such a z says nothing about its usual surprises, so the
        # calibration does not learn from it (one would swamp it for thousands of samples).
        scaled = spread > 0
        spread = np.maximum(np.where(np.isfinite(spread), spread, 0.1 * abs_mean), floor)
        resid = x - expected
        z = np.where(live, np.abs(resid) / spread, 0.0)

        # Calibration: each surprise against its own long-run mean and spread in this series.
        short = s["short"] + p.alpha_short * (
            np.where(live, np.clip(resid / spread, -p.clip, p.clip), 0) - s["short"]
        )
        dev_z = (z - s["z_mean"]) / np.sqrt(s["z_var"] + 1e-4)
        dev_s = (np.abs(short) - s["s_mean"]) / np.sqrt(s["s_var"] + 1e-4)
        # The stronger surprise counts, plus part of the weaker one when both point the same way.
        spike, shift = np.maximum(dev_z, 0.0), np.maximum(p.w_short * dev_s, 0.0)
        dev = np.maximum(dev_z, p.w_short * dev_s) + p.w_both * np.minimum(spike, shift)
        # A spike on a series that is rarely surprised at all counts more (bounded surprise, see Params).
        mu0, var0 = _htm_prior(p.htm_c, p.alpha_htm)
        raw = -np.expm1(-((z / p.htm_c) ** 2))
        h_prev = np.where(np.isfinite(s["h_short"]), s["h_short"], mu0)
        h_short = h_prev + p.alpha_htm * (np.where(live, raw, mu0) - h_prev)
        h_mean = np.where(np.isfinite(s["h_mean"]), s["h_mean"], mu0)
        h_var = np.where(np.isfinite(s["h_var"]), s["h_var"], var0)
        dev_h = p.w_htm * (h_short - h_mean) / np.sqrt(h_var + 1e-6)
        dev = (dev + np.minimum(spike, np.maximum(dev_h, 0.0))) / p.htm_scale
        # Slow view: same kind of model on a coarser resolution (rolling mean of ~block_m samples).
        sl_lvl = np.where(first, x, s["sl_lvl"])
        sp_d = np.where(np.isfinite(pd), pd + s["sl_cd"], sl_lvl)
        sp_w = np.where(np.isfinite(pw), pw + s["sl_cw"], sp_d)
        sl_preds = np.stack([sl_lvl, sp_d, sp_w])
        sms = np.stack([s[f"sm_{m}"] for m in _MODELS])
        smodel = _choose(sms, p.season_gain)
        slow_pred = np.take_along_axis(sl_preds, smodel[None], 0)[0]
        a_b = 1.0 / p.block_m
        sl_r = s["sl_r"] + a_b * (
            np.where(live, np.clip(x - slow_pred, -p.clip * spread, p.clip * spread), 0.0) - s["sl_r"]
        )
        sl_sp = np.maximum(np.where(np.isfinite(s["sl_err"]), s["sl_err"], 0.1 * abs_mean), floor)
        sl_sp = np.maximum(sl_sp, p.slow_floor * np.sqrt(a_b / (2.0 - a_b)) * spread)
        zb = np.where(live, np.abs(sl_r) / sl_sp, 0.0)
        dev_b = (zb - s["b_mean"]) / np.sqrt(s["b_var"] + 1e-4)
        # A spike that recurs at its usual interval (a cron job) is routine, not news.
        age = np.where(np.isfinite(s["t_first"]), t - s["t_first"], 0.0)
        dev = self._recurring(idx, live, z >= p.rt_min, dev, x - level, age, s)
        # News only if it exceeds what this series did recently: one alarm per episode.
        news = dev - p.suppress * np.maximum(s["peak"] - p.peak_floor, 0.0)
        # Own suppression: a slowly growing deviation is not muted by its own rise nor by fast
        # episodes, only by its own earlier alarm (peak_sl, set when it fires).
        news_sl = p.w_slow * dev_b - p.slow_supp * np.maximum(s["peak_sl"] - p.peak_floor, 0.0)
        fired = news_sl >= p.slow_fire
        # Two views that agree are stronger evidence than either alone (see Params); then nothing
        # smaller than this series' last alarm is news. The record rule sees the unscaled total.
        news = np.maximum(news, news_sl) + p.w_agree * np.maximum(np.minimum(news, news_sl), 0.0)
        news = news - p.al_supp * np.maximum(s["peak_al"] - p.al_floor, 0.0)
        shown = news / p.agree_scale
        alarmed = live & (n >= max(3, self.warmup)) & (shown >= p.al_fire)
        score = np.where(live & (n >= 3), -np.expm1(log_ndtr(-shown) / np.log(10.0) / SCORE_DECADES), 0.0)
        # A clear deviation to a value never seen before is news however noisy the series usually is.
        rng = s["hi"] - s["lo"]
        with np.errstate(invalid="ignore"):
            record = live & (n >= p.record_after) & (rng > 0) & (news >= p.record_z) & (z >= p.record_raw)
            record &= (x > s["hi"] + p.record_tol * rng) | (x < s["lo"] - p.record_tol * rng)
        score = np.where(record, np.maximum(score, p.record_score), score)
        lim = p.clip * spread
        sign = np.sign(resid)
        big, same = np.abs(resid) > lim, sign == np.sign(s["run"])
        run = np.where(big, np.where(same, s["run"] + sign, sign), 0.0)
        run_pk = np.where(big, np.where(same, np.maximum(s["run_pk"], np.abs(resid)), np.abs(resid)), 0.0)
        shifted = live & (np.abs(run) >= p.shift_run)
        held = np.abs(resid) >= p.shift_hold * run_pk
        shift_news = shifted & held & (n >= 3) & (s["al_age"] > p.shift_quiet) & (s["sh_age"] > p.shift_gap)
        score = np.where(shift_news, np.maximum(score, p.shift_score), score)

        # Learn. Early rates are 1/n (plain running means), later the fixed EW rates; a seasonal
        # bin is seen once per period, so its rate is 1/periods-seen until it reaches alpha_season.
        a_e = np.maximum(p.alpha_err, 1.0 / np.maximum(n, 1.0))
        a_l = np.maximum(p.alpha_level, 1.0 / (n + 1.0))
        a_c = np.maximum(p.alpha_long, 1.0 / (n + p.prior_n))
        # A bin is visited by several samples when the series is sampled finer than the bin (15 s
        # scrapes, 10-minute bins): each sample moves it by its share of the visit, so a bin is the
        # mean of its samples, not the last one (which would make the profile a last-value forecast).
        per_s = np.where(age > 0, n / np.where(age > 0, age, 1.0), 0.0)
        k_d = np.maximum(1.0, per_s * (DAY / _DAILY_BINS))
        k_w = np.maximum(1.0, per_s * (WEEK / _WEEKLY_BINS))
        a_d = np.maximum(p.alpha_season, 1.0 / (1.0 + np.floor(age / DAY))) / k_d
        a_w = np.maximum(p.alpha_season, 1.0 / (1.0 + np.floor(age / WEEK))) / k_w

        e_all = np.abs(x - preds)
        e_clip = np.minimum(e_all, p.clip * np.where(errs > 0, errs, e_all))
        new_errs = np.where(np.isfinite(errs), errs + a_e * (e_clip - errs), e_all)
        new_mses = np.where(np.isfinite(mses), mses + a_e * (e_clip**2 - mses), e_all**2)
        # Level and offsets follow x (winsorised); a confirmed level shift moves them at once.
        new_level = np.where(shifted, x, level + a_l * np.clip(x - level, -lim, lim))
        c_d = np.where(np.isfinite(pd), s["c_daily"] + a_l * np.clip(x - pd - s["c_daily"], -lim, lim), 0.0)
        c_w = np.where(np.isfinite(pw), s["c_weekly"] + a_l * np.clip(x - pw - s["c_weekly"], -lim, lim), 0.0)
        c_d = np.where(shifted & np.isfinite(pd), x - pd, c_d)
        c_w = np.where(shifted & np.isfinite(pw), x - pw, c_w)
        pd_new = np.where(np.isfinite(pd), pd + a_d * np.clip(x - pd, -lim, lim), x)
        pw_new = np.where(np.isfinite(pw), pw + a_w * np.clip(x - pw, -lim, lim), x)
        a_c = np.where(scaled, a_c, 0.0)
        z_mean, z_var = _ew_moments(s["z_mean"], s["z_var"], z, a_c, p.calib_cap)
        s_mean, s_var = _ew_moments(s["s_mean"], s["s_var"], np.abs(short), a_c, p.calib_cap)
        h_mean, h_var = _ew_moments(h_mean, h_var, h_short, a_c, p.calib_cap)
        a_s = np.maximum(p.alpha_slow, 1.0 / (n + 1.0))
        a_se = np.maximum(p.alpha_slow_err, 1.0 / np.maximum(n, 1.0))
        n_lvl = np.where(shifted, x, sl_lvl + a_s * np.clip(x - sl_lvl, -lim, lim))
        n_cd = np.where(np.isfinite(pd), s["sl_cd"] + a_s * np.clip(x - pd - s["sl_cd"], -lim, lim), 0.0)
        n_cw = np.where(np.isfinite(pw), s["sl_cw"] + a_s * np.clip(x - pw - s["sl_cw"], -lim, lim), 0.0)
        n_cd = np.where(shifted & np.isfinite(pd), x - pd, n_cd)
        n_cw = np.where(shifted & np.isfinite(pw), x - pw, n_cw)
        sl_err = s["sl_err"]
        n_err = np.where(np.isfinite(sl_err), sl_err + a_se * (np.abs(sl_r) - sl_err), np.abs(sl_r))
        b_mean, b_var = _ew_moments(s["b_mean"], s["b_var"], zb, a_c, p.calib_cap)
        e2 = (x - preds) ** 2
        e2 = np.minimum(e2, (p.clip**2) * np.where(sms > 0, sms, e2))
        n_sms = np.where(np.isfinite(sms), sms + a_se * (e2 - sms), e2)
        upd = {
            "count": n + 1,
            "t_first": np.where(first, t, s["t_first"]),
            "level": new_level,
            "abs_mean": abs_mean + a_l * (np.abs(x) - abs_mean),
            "err_long": np.where(
                np.isfinite(err_long),
                err_long + a_s * (np.minimum(np.abs(resid), p.peak_cap * spread) - err_long),
                np.abs(resid),
            ),
            "c_daily": c_d,
            "c_weekly": c_w,
            **{f"err_{m}": new_errs[k] for k, m in enumerate(_MODELS)},
            **{f"mse_{m}": new_mses[k] for k, m in enumerate(_MODELS)},
            "run": np.where(shifted, 0.0, run),
            "run_pk": np.where(shifted, 0.0, run_pk),
            "short": short,
            "peak": np.maximum(np.where(scaled, np.minimum(dev, p.peak_cap), 0.0), s["peak"] * p.peak_decay),
            "z_mean": z_mean,
            "z_var": z_var,
            "s_mean": s_mean,
            "s_var": s_var,
            "h_short": h_short,
            "h_mean": h_mean,
            "h_var": h_var,
            "lo": np.fmin(s["lo"], x),
            "hi": np.fmax(s["hi"], x),
            "sl_lvl": n_lvl,
            "sl_cd": n_cd,
            "sl_cw": n_cw,
            "sl_r": np.where(shifted, 0.0, sl_r),
            "sl_err": n_err,
            "b_mean": b_mean,
            "b_var": b_var,
            "peak_sl": np.maximum(
                s["peak_sl"] * p.slow_decay, np.where(fired, np.minimum(p.w_slow * dev_b, p.peak_cap), 0.0)
            ),
            **{f"sm_{m}": n_sms[k] for k, m in enumerate(_MODELS)},
            "al_age": np.where(alarmed | shift_news, 0.0, s["al_age"] + 1.0),
            "sh_age": np.where(shifted & (n >= self.warmup), 0.0, s["sh_age"] + 1.0),
            "peak_al": np.maximum(
                s["peak_al"] * p.al_decay, np.where(alarmed, np.minimum(news, p.peak_cap), 0.0)
            ),
        }
        for k, v in upd.items():
            self._s[k][idx] = np.where(live | (first & (k in _FIRST)), v, s[k])
        self._p["daily"][idx[ok], bd[ok]] = pd_new[ok]
        self._p["weekly"][idx[ok], bw[ok]] = pw_new[ok]

        band = self._band(s["z_mean"], s["z_var"]) * spread
        # No alarms during the warm-up, and no score either: alert rules read the score itself.
        score = np.where(n >= self.warmup, score, 0.0)
        alarm = (score >= self.threshold) & live
        return Scores(score, expected, expected - band, expected + band, alarm)

    def _recurring(
        self,
        idx: np.ndarray,
        live: np.ndarray,
        big: np.ndarray,
        dev: np.ndarray,
        size: np.ndarray,
        age: np.ndarray,
        s: dict[str, np.ndarray],
    ) -> np.ndarray:
        """Deviation with routine recurring spikes scaled by rt_keep (see Params); remembers events.

        Only series with an event this step do the O(events) work, so the cost stays flat."""
        p = self.params
        emax = s["ev_max"] * p.rt_decay
        ev = live & big & (np.abs(size) >= p.rt_frac * emax)
        self._s["ev_max"][idx] = np.where(
            ev, np.maximum(emax, np.abs(size)), np.where(live, emax, s["ev_max"])
        )
        cand = np.flatnonzero(ev)
        if cand.size == 0:
            return dev
        rows = idx[cand]
        et = self._p["ev_t"][rows].astype(float)
        er = self._p["ev_r"][rows].astype(float)
        eg = self._p["ev_g"][rows].astype(float)
        r = size[cand][:, None]
        a = age[cand]
        with np.errstate(invalid="ignore"):
            similar = np.abs(er - r) <= p.rt_size * np.maximum(np.abs(er), np.abs(r))
            g0 = a - np.max(np.where(similar, et, -np.inf), axis=1)  # inf: no similar event yet
            match = similar & (np.abs(eg - g0[:, None]) <= p.rt_gap * g0[:, None])
        routine = match.sum(axis=1) >= p.rt_m
        out = dev.copy()
        out[cand] = np.where(routine, dev[cand] * p.rt_keep, dev[cand])
        slot = s["ev_i"][cand].astype(np.intp) % _EVENTS
        self._p["ev_t"][rows, slot] = a
        self._p["ev_r"][rows, slot] = size[cand]
        self._p["ev_g"][rows, slot] = np.where(np.isfinite(g0), g0, np.nan)
        self._s["ev_i"][rows] = slot + 1
        return out

    def _band(self, z_mean: np.ndarray, z_var: np.ndarray) -> np.ndarray:
        """Half-width of the expected band, in spreads: the deviation that alone reaches the threshold."""
        dev = -ndtri(10.0 ** (SCORE_DECADES * np.log1p(-self.threshold))) * self.params.agree_scale
        return z_mean + dev * np.sqrt(z_var + 1e-4)

    # -- persistence -----------------------------------------------------------------------------

    def state(self) -> dict[str, np.ndarray]:
        """All state as arrays (e.g. for ``np.savez``); ``from_state`` restores it exactly."""
        out = {f"s_{k}": v.copy() for k, v in self._s.items()}
        out |= {f"p_{k}": v.copy() for k, v in self._p.items()}
        out["used"] = self._used.copy()
        out["sensitivity"] = np.array(self.sensitivity)
        out["warmup"] = np.array(self.warmup)
        out["param_names"] = np.array(list(Params.__dataclass_fields__))
        out["params"] = np.array([getattr(self.params, f) for f in Params.__dataclass_fields__])
        return out

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> DetectorBank:
        """Restore a bank; state saved by another version loads too (unknown fields are ignored,
        missing ones start fresh) so an upgrade does not throw away the learned baselines."""
        known = Params.__dataclass_fields__
        saved = zip(map(str, state.get("param_names", [])), map(float, state.get("params", [])), strict=True)
        params = Params(**{k: v for k, v in saved if k in known})
        bank = cls(str(state["sensitivity"]), int(state["warmup"]), params)
        used = np.array(state["used"], bool)
        bank._used = used
        bank._s = {
            k: np.array(state[f"s_{k}"], float) if f"s_{k}" in state else np.full(used.size, init)
            for k, init in _SCALARS.items()
        }
        bank._p = {
            k: np.array(state[f"p_{k}"], np.float32)
            if f"p_{k}" in state
            else np.full((used.size, bins), np.nan, np.float32)
            for k, bins in _PROFILES.items()
        }
        return bank


@cache
def _htm_prior(c: float, alpha: float) -> tuple[float, float]:
    """Mean of the bounded raw surprise under Gaussian noise (z = |N| / E|N|), and the variance of
    its EW short mean (rate alpha): the prior of the bounded surprise's calibration."""
    g = np.linspace(0.0, 8.0, 801)
    w = np.exp(-0.5 * g * g)
    w /= w.sum()
    raw = -np.expm1(-((g * np.sqrt(np.pi / 2) / c) ** 2))
    mu = float((w * raw).sum())
    return mu, float((w * (raw - mu) ** 2).sum()) * alpha / (2.0 - alpha)


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
    """Exponentially weighted mean and variance (West's update) of v capped at mean + cap sd."""
    d = np.minimum(v, mean + cap * np.sqrt(var)) - mean
    return mean + a * d, (1.0 - a) * (var + a * d * d)
