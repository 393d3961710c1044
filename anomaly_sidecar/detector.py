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
news in itself and scores at least 0.85 (a `high` alarm; calm noise sets records too), even on a series
whose routine spikes have taught the calibration to shrug; a confirmed level shift that holds its new
level scores 1, once per episode, on a series that rarely shifts (a step smeared by rate() is otherwise
a string of near misses). Each rule stays because removing it lowers the cross-validated NAB score
(benchmarks/nab_cv.py; docs/anomaly-model.md has the ablations). Expected value and band are clipped to
the series's domain when one is set (``set_domain``).

Everything is vectorised across series: ``update`` does a fixed number of numpy operations whatever the
number of series. Memory per series: 44 float64 scalars + (144 + 168) float32 bins + 3 x 8 float32
recent large surprises = 1,696 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import numpy as np
from scipy.special import log_ndtr, ndtri

from tenantpulse.anomaly_sidecar.defaults import DEFAULT_WARMUP
from tenantpulse.conventions.sensitivity import SENSITIVITY

DAY = 86_400.0
WEEK = 7 * DAY

# The score is a monotone map of the Gaussian tail p of the calibrated deviation:
# s = 1 - exp(log10(p) / SCORE_DECADES), so 0.5 <-> p = 1e-9.7, 0.8 <-> 1e-22.5, 0.9 <-> 1e-32.2.
# (p is a ranking device on the heavy-tailed deviations, not a literal false-alarm rate.) The scale is
# set on calm noise: at medium (0.9) at most 5 samples in 100,000 (benchmarks/nab_cv.py ``calm_rate``;
# 12 decades gave 9 to 30). NAB's scores do not depend on it (NAB picks its own threshold: about 0.84
# for the standard profile, 0.85 for reward_low_FP).
SCORE_DECADES = 14.0

# Numerical floors and start-up rules of ``update`` (the model's tunable constants are in ``Params``).
_VAR_EPS = 1e-4  # variance floor of a calibration: a surprise that never varied must not be infinite news
_H_VAR_EPS = 1e-6  # the same for the bounded surprise, whose short mean varies far less (prior ~1.4e-3)
_FLOOR_OF_SIZE = 1e-3  # spread floor relative to the series's size (EW mean |x|): a constant has no spread
_FLOOR_MIN = 1e-9  # and an absolute one: a series of zeros has no size either
_UNLEARNT_SPREAD = 0.1  # spread before any error is learnt (at the second sample), relative to the size
_MIN_SCORED = 3  # samples learnt before one is scored or alarms: a spread resting on fewer is no spread
# Calibration priors, what Gaussian noise gives: z = |N| / E|N| has mean 1 and variance pi/2 - 1, and
# |short| (EW mean at alpha_short = 0.1 of N / E|N|) has mean ~0.23 and variance ~0.03.
_Z_PRIOR_MEAN, _Z_PRIOR_VAR = 1.0, 0.57
_SHORT_PRIOR_MEAN, _SHORT_PRIOR_VAR = 0.23, 0.03
# The bounded surprise's prior integrates over |N| on a grid up to 8 sd (beyond, a weight < 1e-14) in
# steps of 0.01 sd.
_PRIOR_GRID_SD = 8.0
_PRIOR_GRID_POINTS = 801


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
    "z_mean": _Z_PRIOR_MEAN,
    "z_var": _Z_PRIOR_VAR,
    "s_mean": _SHORT_PRIOR_MEAN,
    "s_var": _SHORT_PRIOR_VAR,
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
    "b_mean": _Z_PRIOR_MEAN,  # zb is a z too: the same prior
    "b_var": _Z_PRIOR_VAR,
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
    # The values the series can take (``set_domain``; NaN = unbounded): expected, lower and upper are
    # clipped to it (a ratio's band must not go below 0).
    "dom_lo": np.nan,
    "dom_hi": np.nan,
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
    # the record of a trend the model follows is not news) scores at least record_score once the
    # range rests on record_after samples of history: above the high preset, below medium. Records are
    # worth +14 cross-validated NAB points, but calm noise sets records too (at 1.0 they were half of
    # its medium alarms): on its own a record is a `high` alarm; at medium the score must say so too.
    record_tol: float = 0.05
    record_z: float = 6.0
    record_after: float = 200.0
    record_score: float = 0.85
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
    # score divides the total by agree_scale; the price is that an event seen by one view alone needs
    # 1.2x the deviation.
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
    # al_fire is the shown deviation of the medium preset (11.9 at SCORE_DECADES = 14): an alarm the
    # episode memory counts is one a medium alert sees. Lower, a ramp that stayed below medium muted
    # the level-shift rule that would have reported it (a smeared 15x error step: 28% missed at 11).
    al_fire: float = 12.0
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

    def set_domain(self, idx: np.ndarray, lower: np.ndarray | float, upper: np.ndarray | float) -> None:
        """The values these series can take (e.g. 0 and 1 for a ratio; +-inf: unbounded): the expected
        value and the band are clipped to it. Scoring is unchanged."""
        idx = np.asarray(idx, np.intp)
        self._s["dom_lo"][idx] = lower
        self._s["dom_hi"][idx] = upper

    def domain_set(self, idx: np.ndarray) -> np.ndarray:
        """Whether ``set_domain`` was called for these series since they were added."""
        return ~np.isnan(self._s["dom_lo"][np.asarray(idx, np.intp)])

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
    #
    # ``update`` runs the steps below in order; each is a small function over whole arrays (one entry
    # per series in the batch) whose docstring says why the rule exists. Scoring uses only the state
    # from before the sample; learning then builds the new state, and ``_commit`` writes it back.

    def update(self, idx: np.ndarray, t: float | np.ndarray, x: np.ndarray) -> Scores:
        """Score one new sample per series (NaN = missing: score 0, state unchanged), then learn it.

        Scoring: the fast deviation (spike and short-term shift, calibrated, plus the bounded
        surprise's gain) and the slow view's; routine recurring spikes discounted; each view's own
        one-alarm-per-episode suppression, their agreement, the alarm-level suppression; a new record
        or a confirmed level shift scores at the top. Learning: the rates, the fast models and their
        profiles, the calibrations, the slow view and the memory of the episode."""
        p = self.params
        b = self._batch(idx, t, x)
        fast = _fast_models(b, p)
        short, spike, dev = _spike_and_shift(b, fast, p)
        bounded, dev = _bounded_surprise(b, fast.z, spike, dev, p)
        slow = _slow_view(b, fast, p)
        dev = self._recurring(b, fast, dev)
        news, news_sl = _fast_news(b, dev, p), _slow_news(b, slow.dev, p)
        news = _after_alarm(b, _agree(news, news_sl, p), p)
        shown = news / p.agree_scale
        alarmed = b.live & (b.n >= max(_MIN_SCORED, self.warmup)) & (shown >= p.al_fire)
        score = _score(b, shown)
        score = np.where(_new_record(b, fast, news, p), np.maximum(score, p.record_score), score)
        shift = _level_shift(b, fast, p)
        score = np.where(shift.news, np.maximum(score, p.shift_score), score)

        rates = _rates(b, p)
        new = _learn_fast_models(b, fast, shift.shifted, rates, p)
        new |= _learn_calibration(b, fast, short, bounded, slow, rates, p)
        new |= _learn_slow_view(b, fast, slow, shift.shifted, rates, p)
        new |= self._learn_episode(b, fast, dev, slow, news_sl, news, alarmed, shift, p)
        self._commit(b, new, *_learn_profiles(b, fast, rates))

        band = self._band(b.s["z_mean"], b.s["z_var"]) * fast.spread
        # No alarms during the warm-up, and no score either: alert rules read the score itself.
        score = np.where(b.n >= self.warmup, score, 0.0)
        alarm = (score >= self.threshold) & b.live
        lo = np.where(np.isnan(b.s["dom_lo"]), -np.inf, b.s["dom_lo"])
        hi = np.where(np.isnan(b.s["dom_hi"]), np.inf, b.s["dom_hi"])
        expected = fast.expected
        return Scores(
            score,
            np.clip(expected, lo, hi),
            np.clip(expected - band, lo, hi),
            np.clip(expected + band, lo, hi),
            alarm,
        )

    def _batch(self, idx: np.ndarray, t: float | np.ndarray, x: np.ndarray) -> _Batch:
        """The samples with the state of their series, and the profile bins they fall in.

        The state is copied out (``s``) so that every step sees the state from before the sample,
        whatever was learnt from it; a series's first sample only initialises it (``first``), later
        ones are scored and learnt (``live``)."""
        idx = np.asarray(idx, np.intp)
        x = np.broadcast_to(np.asarray(x, float), idx.shape)
        t = np.broadcast_to(np.asarray(t, float), idx.shape)
        s = {k: v[idx] for k, v in self._s.items()}
        ok = np.isfinite(x) & np.isfinite(t)
        first = ok & (s["count"] == 0)
        t_ok = np.where(ok, t, 0.0)
        bd = ((t_ok % DAY) * (_DAILY_BINS / DAY)).astype(np.intp) % _DAILY_BINS
        bw = ((t_ok % WEEK) * (_WEEKLY_BINS / WEEK)).astype(np.intp) % _WEEKLY_BINS
        return _Batch(
            idx=idx,
            t=t,
            x=x,
            s=s,
            ok=ok,
            first=first,
            live=ok & ~first,
            n=s["count"],
            bd=bd,
            bw=bw,
            pd=self._p["daily"][idx, bd].astype(float),
            pw=self._p["weekly"][idx, bw].astype(float),
            # A clock that steps back (a daylight-saving hour, a repeated scrape, a row from before the
            # first one) must not make an age negative: profile rates divide by the periods seen.
            age=np.where(np.isfinite(s["t_first"]), np.maximum(t - s["t_first"], 0.0), 0.0),
        )

    def _recurring(self, b: _Batch, fast: _Fast, dev: np.ndarray) -> np.ndarray:
        """Deviation with routine recurring spikes scaled by rt_keep (see Params); remembers events.

        Why: a cron job's spike at its usual interval is the series' routine, not news, whatever its
        period (a daily job with +-15 min of jitter and a spike every 100 samples alike). Only series
        with an event this step do the O(events) work, so the cost stays flat."""
        p = self.params
        idx, live, age, s = b.idx, b.live, b.age, b.s
        big, size = fast.z >= p.rt_min, b.x - fast.level  # size: signed, above the level
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

    def _learn_episode(
        self,
        b: _Batch,
        fast: _Fast,
        dev: np.ndarray,
        slow: _Slow,
        news_sl: np.ndarray,
        news: np.ndarray,
        alarmed: np.ndarray,
        shift: _Shift,
        p: Params,
    ) -> dict[str, np.ndarray]:
        """Remember this sample's episode: the decaying peaks that mute what follows an alarm (fast,
        slow, alarm level), the ages since the last alarm and level shift, and the run of large
        same-sign residuals.

        Why: one alarm per episode. A burst or a step lasts several samples; without a memory of the
        episode each of them would alarm again. Peaks are capped (``peak_cap``) so one enormous
        deviation does not mute the series for thousands of samples."""
        s = b.s
        return {
            "run": np.where(shift.shifted, 0.0, shift.run),
            "run_pk": np.where(shift.shifted, 0.0, shift.run_pk),
            "peak": np.maximum(
                np.where(fast.scaled, np.minimum(dev, p.peak_cap), 0.0), s["peak"] * p.peak_decay
            ),
            "peak_sl": np.maximum(
                s["peak_sl"] * p.slow_decay,
                np.where(news_sl >= p.slow_fire, np.minimum(p.w_slow * slow.dev, p.peak_cap), 0.0),
            ),
            "al_age": np.where(alarmed | shift.news, 0.0, s["al_age"] + 1.0),
            "sh_age": np.where(shift.shifted & (b.n >= self.warmup), 0.0, s["sh_age"] + 1.0),
            "peak_al": np.maximum(
                s["peak_al"] * p.al_decay, np.where(alarmed, np.minimum(news, p.peak_cap), 0.0)
            ),
        }

    def _commit(self, b: _Batch, new: dict[str, np.ndarray], pd_new: np.ndarray, pw_new: np.ndarray) -> None:
        """Write the learnt state back: for scored samples all of it, for a series's first sample only
        what initialises it (``_FIRST``); missing samples leave their series unchanged."""
        for k, v in new.items():
            self._s[k][b.idx] = np.where(b.live | (b.first & (k in _FIRST)), v, b.s[k])
        ok = b.ok
        self._p["daily"][b.idx[ok], b.bd[ok]] = pd_new[ok]
        self._p["weekly"][b.idx[ok], b.bw[ok]] = pw_new[ok]

    def _band(self, z_mean: np.ndarray, z_var: np.ndarray) -> np.ndarray:
        """Half-width of the expected band, in spreads: the deviation that alone reaches the threshold."""
        dev = -ndtri(10.0 ** (SCORE_DECADES * np.log1p(-self.threshold))) * self.params.agree_scale
        return z_mean + dev * np.sqrt(z_var + _VAR_EPS)

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


# -- the steps of ``DetectorBank.update`` (module functions over whole arrays) ----------------------


class _Batch(NamedTuple):
    """One ``update``'s samples, the state of their series before them, and their profile bins."""

    idx: np.ndarray
    t: np.ndarray
    x: np.ndarray
    s: dict[str, np.ndarray]  # scalar state of these series, as it was before x
    ok: np.ndarray  # a sample at all (x and t finite)
    first: np.ndarray  # the series's first sample: initialises it, not scored
    live: np.ndarray  # a later sample: scored and learnt
    n: np.ndarray  # samples learnt so far
    bd: np.ndarray  # daily / weekly profile bin of the sample
    bw: np.ndarray
    pd: np.ndarray  # value of that bin (NaN: never seen)
    pw: np.ndarray
    age: np.ndarray  # seconds since the series's first sample


class _Fast(NamedTuple):
    """The fast models' view of the sample: the predictions and the spread that judges it."""

    level: np.ndarray
    abs_mean: np.ndarray
    floor: np.ndarray
    preds: np.ndarray  # (3, n): flat, daily, weekly
    errs: np.ndarray
    mses: np.ndarray
    expected: np.ndarray
    spread: np.ndarray
    scaled: np.ndarray
    resid: np.ndarray
    z: np.ndarray
    lim: np.ndarray  # winsorising limit of residuals: clip x spread


class _Bounded(NamedTuple):
    """The bounded surprise's short mean and its calibration (priors filled in)."""

    short: np.ndarray
    mean: np.ndarray
    var: np.ndarray


class _Slow(NamedTuple):
    """The slow view: its level, model errors, rolling residual mean and calibrated deviation."""

    level: np.ndarray
    sms: np.ndarray
    r: np.ndarray
    zb: np.ndarray
    dev: np.ndarray


class _Shift(NamedTuple):
    """The run of large same-sign residuals, and whether it is a (newsworthy) level shift."""

    run: np.ndarray
    run_pk: np.ndarray
    shifted: np.ndarray
    news: np.ndarray


class _Rates(NamedTuple):
    """Learning rates of this sample, per series."""

    err: np.ndarray
    level: np.ndarray
    calib: np.ndarray
    slow: np.ndarray
    slow_err: np.ndarray
    daily: np.ndarray
    weekly: np.ndarray


def _calibrated(v: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """A surprise against its own long-run mean and spread in this series ("anomaly likelihood").

    Why: so that one threshold means the same on quiet and noisy series."""
    return (v - mean) / np.sqrt(var + _VAR_EPS)


def _excess(peak: np.ndarray, floor: float) -> np.ndarray:
    """The part of a decaying peak above ``floor``: below it, a past deviation mutes nothing."""
    return np.maximum(peak - floor, 0.0)


def _follow(value: np.ndarray, target: np.ndarray, rate: np.ndarray, lim: np.ndarray) -> np.ndarray:
    """One EW step of ``value`` towards ``target``, the step winsorised at ``lim``.

    Why: one outlier must not drag a level, offset or profile bin away from the series."""
    return value + rate * np.clip(target - value, -lim, lim)


def _offset(
    c: np.ndarray,
    profile: np.ndarray,
    x: np.ndarray,
    rate: np.ndarray,
    lim: np.ndarray,
    shifted: np.ndarray,
) -> np.ndarray:
    """The new offset of the series from a profile bin (0 where the bin was never seen); a
    confirmed level shift moves it at once, as it moves the level."""
    seen = np.isfinite(profile)
    c = np.where(seen, _follow(c, x - profile, rate, lim), 0.0)
    return np.where(shifted & seen, x - profile, c)


def _ew_mean(mean: np.ndarray, v: np.ndarray, rate: np.ndarray, start: np.ndarray) -> np.ndarray:
    """EW mean of ``v``; a mean not yet started (NaN) starts at ``start``."""
    return np.where(np.isfinite(mean), mean + rate * (v - mean), start)


def _spread_floor(abs_mean: np.ndarray, err_long: np.ndarray, p: Params) -> np.ndarray:
    """Least spread a deviation is measured against.

    Why: a series that never changed (a constant, a series of zeros) has no spread of its own, and
    on an intermittent series (zeros with bursts) the recent spread is that of the zeros; a burst
    would be a 1e16-sigma event each time. So the spread is at least a small share of the series's
    size and ``floor_rel`` of its long-run error, bursts included, and never zero."""
    return np.maximum(_FLOOR_OF_SIZE * abs_mean, p.floor_rel * np.nan_to_num(err_long)) + _FLOOR_MIN


def _predictions(b: _Batch, level: np.ndarray, c_daily: np.ndarray, c_weekly: np.ndarray) -> np.ndarray:
    """The three models' predictions (flat, daily, weekly), stacked: each profile bin plus the
    recent offset from it.

    Why a fallback: a bin never seen yet (the first day or week) predicts what the simpler model
    does, so a young seasonal model is never worse than the flat one."""
    pred_d = np.where(np.isfinite(b.pd), b.pd + c_daily, level)
    pred_w = np.where(np.isfinite(b.pw), b.pw + c_weekly, pred_d)
    return np.stack([level, pred_d, pred_w])


def _fast_models(b: _Batch, p: Params) -> _Fast:
    """Expected value, spread and standardised deviation of the sample, from the trusted model.

    Why: the model with the least recent (winsorised) squared error is trusted, a seasonal one only
    once it clearly beats the simpler one, so seasonality is detected from the data, never assumed.
    The prediction is made before x is seen (the score at t uses data up to t only)."""
    s = b.s
    level = np.where(b.first, b.x, s["level"])
    abs_mean = np.where(b.first, np.abs(b.x), s["abs_mean"])
    floor = _spread_floor(abs_mean, s["err_long"], p)
    preds = _predictions(b, level, s["c_daily"], s["c_weekly"])
    errs = np.stack([s[f"err_{m}"] for m in _MODELS])
    mses = np.stack([s[f"mse_{m}"] for m in _MODELS])
    model = _choose(mses, p.season_gain)
    expected = np.take_along_axis(preds, model[None], 0)[0]
    spread = np.take_along_axis(errs, model[None], 0)[0]
    # A series that has not changed yet (errors all zero) has no scale: its first change is
    # scored against the floor, but such a z says nothing about its usual surprises, so the
    # calibration does not learn from it (one would swamp it for thousands of samples).
    scaled = spread > 0
    spread = np.maximum(np.where(np.isfinite(spread), spread, _UNLEARNT_SPREAD * abs_mean), floor)
    resid = b.x - expected
    z = np.where(b.live, np.abs(resid) / spread, 0.0)
    return _Fast(
        level, abs_mean, floor, preds, errs, mses, expected, spread, scaled, resid, z, p.clip * spread
    )


def _spike_and_shift(b: _Batch, fast: _Fast, p: Params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(short, spike, dev)``: the short-term mean of signed deviations, the calibrated spike, and
    the combined deviation.

    Why two surprises: a spike is one large deviation; a level shift is a run of moderate ones of
    the same sign, which only their short mean reveals. The stronger counts (adding part of the weaker
    when both agree lowered the cross-validated NAB score and doubled calm false alarms: removed)."""
    s = b.s
    short = s["short"] + p.alpha_short * (
        np.where(b.live, np.clip(fast.resid / fast.spread, -p.clip, p.clip), 0) - s["short"]
    )
    dev_z = _calibrated(fast.z, s["z_mean"], s["z_var"])
    dev_s = _calibrated(np.abs(short), s["s_mean"], s["s_var"])
    return short, np.maximum(dev_z, 0.0), np.maximum(dev_z, p.w_short * dev_s)


def _bounded_surprise(
    b: _Batch, z: np.ndarray, spike: np.ndarray, dev: np.ndarray, p: Params
) -> tuple[_Bounded, np.ndarray]:
    """The bounded surprise, and the deviation with its gain (divided by ``htm_scale``).

    Why: a spike on a series that is rarely surprised at all is more news than one on a series
    surprised every few samples (bursty tweet volumes). The raw surprise saturates (a 5-sigma and a
    100-sigma sample are equally unexpected, as in Numenta's anomaly likelihood); its short mean is
    calibrated in this series, and the spike gains that, at most the spike itself."""
    s = b.s
    mu0, var0 = _htm_prior(p.htm_c, p.alpha_htm)
    raw = -np.expm1(-((z / p.htm_c) ** 2))
    h_prev = np.where(np.isfinite(s["h_short"]), s["h_short"], mu0)
    h_short = h_prev + p.alpha_htm * (np.where(b.live, raw, mu0) - h_prev)
    h_mean = np.where(np.isfinite(s["h_mean"]), s["h_mean"], mu0)
    h_var = np.where(np.isfinite(s["h_var"]), s["h_var"], var0)
    dev_h = p.w_htm * (h_short - h_mean) / np.sqrt(h_var + _H_VAR_EPS)
    dev = (dev + np.minimum(spike, np.maximum(dev_h, 0.0))) / p.htm_scale
    return _Bounded(h_short, h_mean, h_var), dev


def _slow_view(b: _Batch, fast: _Fast, p: Params) -> _Slow:
    """The slow view's calibrated deviation: a rolling mean of about ``block_m`` residuals against a
    slowly adapting prediction, standardised by its own spread.

    Why: the fast models absorb a holiday or a slow drift within a few samples; a coarser model
    adapting at ``alpha_slow`` still sees it. Its spread is at least what white noise at the fast
    spread gives such a mean, so a long quiet stretch does not make every small blip slow news."""
    s = b.s
    sl_lvl = np.where(b.first, b.x, s["sl_lvl"])
    sl_preds = _predictions(b, sl_lvl, s["sl_cd"], s["sl_cw"])
    sms = np.stack([s[f"sm_{m}"] for m in _MODELS])
    smodel = _choose(sms, p.season_gain)
    slow_pred = np.take_along_axis(sl_preds, smodel[None], 0)[0]
    a_b = 1.0 / p.block_m
    sl_r = s["sl_r"] + a_b * (
        np.where(b.live, np.clip(b.x - slow_pred, -fast.lim, fast.lim), 0.0) - s["sl_r"]
    )
    sl_sp = np.maximum(
        np.where(np.isfinite(s["sl_err"]), s["sl_err"], _UNLEARNT_SPREAD * fast.abs_mean), fast.floor
    )
    sl_sp = np.maximum(sl_sp, p.slow_floor * np.sqrt(a_b / (2.0 - a_b)) * fast.spread)
    zb = np.where(b.live, np.abs(sl_r) / sl_sp, 0.0)
    return _Slow(sl_lvl, sms, sl_r, zb, _calibrated(zb, s["b_mean"], s["b_var"]))


def _fast_news(b: _Batch, dev: np.ndarray, p: Params) -> np.ndarray:
    """The fast deviation less ``suppress`` of what this series did in the last few dozen samples.

    Why: one alarm per episode, not one per sample of a burst."""
    return dev - p.suppress * _excess(b.s["peak"], p.peak_floor)


def _slow_news(b: _Batch, dev_b: np.ndarray, p: Params) -> np.ndarray:
    """The slow deviation less all (``slow_supp``) of its own earlier alarm.

    Why its own suppression: a slowly growing deviation must not be muted by its own rise nor by
    fast episodes, only by its own earlier alarm; else a steadily growing episode alarms again and
    again."""
    return p.w_slow * dev_b - p.slow_supp * _excess(b.s["peak_sl"], p.peak_floor)


def _agree(news: np.ndarray, news_sl: np.ndarray, p: Params) -> np.ndarray:
    """The stronger of the two views plus ``w_agree`` of the weaker when both see something.

    Why: two views that agree are stronger evidence than either alone; a burst that is also a slow
    level change is news even when each view alone is a near miss."""
    return np.maximum(news, news_sl) + p.w_agree * np.maximum(np.minimum(news, news_sl), 0.0)


def _after_alarm(b: _Batch, news: np.ndarray, p: Params) -> np.ndarray:
    """News less what exceeds ``al_floor`` of this series's last alarm (decaying).

    Why: the fast suppression forgives half of any recent deviation; this forgives none of an
    actual alarm, so a burst that rises over several samples alarms once, not at each step."""
    return news - p.al_supp * _excess(b.s["peak_al"], p.al_floor)


def _score(b: _Batch, shown: np.ndarray) -> np.ndarray:
    """Score in [0, 1): a monotone map of the Gaussian tail of the shown deviation (``SCORE_DECADES``).

    Why not before ``_MIN_SCORED`` samples: the spread then rests on one or two residuals."""
    tail = log_ndtr(-shown) / np.log(10.0) / SCORE_DECADES
    return np.where(b.live & (b.n >= _MIN_SCORED), -np.expm1(tail), 0.0)


def _new_record(b: _Batch, fast: _Fast, news: np.ndarray, p: Params) -> np.ndarray:
    """Samples that are a new record: beyond every value seen, by ``record_tol`` of the range, and a
    clear deviation (calibrated ``record_z``, raw ``record_raw``), once the range rests on
    ``record_after`` samples.

    Why: a value never seen before is news however noisy the series usually is (Numenta's "spatial
    anomaly"), even where routine spikes have taught the calibration to shrug. The deviation tests
    keep out the record of a trend the model follows and the maxima of skewed, discrete noise."""
    s, x = b.s, b.x
    rng = s["hi"] - s["lo"]
    with np.errstate(invalid="ignore"):
        record = (
            b.live & (b.n >= p.record_after) & (rng > 0) & (news >= p.record_z) & (fast.z >= p.record_raw)
        )
        record &= (x > s["hi"] + p.record_tol * rng) | (x < s["lo"] - p.record_tol * rng)
    return record


def _level_shift(b: _Batch, fast: _Fast, p: Params) -> _Shift:
    """The run of large (beyond ``lim``) same-sign residuals and its largest residual; a run of
    ``shift_run`` is a confirmed level shift, news if it holds its level and is not routine.

    Why: a step smeared over several samples by rate() is otherwise a string of near misses, each
    muted by the one before. It is news only if the series holds its new level (a burst decaying
    from its peak is a transient, judged by the spike view), outside an alarmed episode
    (``shift_quiet``) and on a series that rarely shifts (``shift_gap``)."""
    s, resid = b.s, fast.resid
    sign = np.sign(resid)
    big, same = np.abs(resid) > fast.lim, sign == np.sign(s["run"])
    run = np.where(big, np.where(same, s["run"] + sign, sign), 0.0)
    run_pk = np.where(big, np.where(same, np.maximum(s["run_pk"], np.abs(resid)), np.abs(resid)), 0.0)
    shifted = b.live & (np.abs(run) >= p.shift_run)
    held = np.abs(resid) >= p.shift_hold * run_pk
    quiet = (s["al_age"] > p.shift_quiet) & (s["sh_age"] > p.shift_gap)
    news = shifted & held & (b.n >= _MIN_SCORED) & quiet
    return _Shift(run, run_pk, shifted, news)


def _rates(b: _Batch, p: Params) -> _Rates:
    """Learning rates: early 1/n (plain running means), later the fixed EW rates of ``Params``.

    Why: a young series learns from every sample equally instead of from its first ones forever
    (an EW mean started at the first sample) or from its last ones only. A seasonal bin is seen once
    per period, so its rate is 1/periods-seen until it reaches ``alpha_season`` (``_bin_rate``)."""
    n = b.n
    return _Rates(
        err=np.maximum(p.alpha_err, 1.0 / np.maximum(n, 1.0)),
        level=np.maximum(p.alpha_level, 1.0 / (n + 1.0)),
        calib=np.maximum(p.alpha_long, 1.0 / (n + p.prior_n)),
        slow=np.maximum(p.alpha_slow, 1.0 / (n + 1.0)),
        slow_err=np.maximum(p.alpha_slow_err, 1.0 / np.maximum(n, 1.0)),
        daily=_bin_rate(b, DAY, _DAILY_BINS, p),
        weekly=_bin_rate(b, WEEK, _WEEKLY_BINS, p),
    )


def _bin_rate(b: _Batch, period: float, bins: int, p: Params) -> np.ndarray:
    """Rate of a profile bin: 1/periods-seen (at least ``alpha_season``), shared among the samples
    that visit the bin.

    Why shared: when the series is sampled finer than the bin (15 s scrapes, 10-minute bins) each
    sample moves the bin by its share of the visit, so a bin is the mean of its samples, not the last
    one (which would make the profile a last-value forecast)."""
    age = b.age
    per_s = np.where(age > 0, b.n / np.where(age > 0, age, 1.0), 0.0)
    visits = np.maximum(1.0, per_s * (period / bins))
    return np.maximum(p.alpha_season, 1.0 / (1.0 + np.floor(age / period))) / visits


def _learn_fast_models(
    b: _Batch, fast: _Fast, shifted: np.ndarray, r: _Rates, p: Params
) -> dict[str, np.ndarray]:
    """New state of the fast models: the errors of each (spread and model choice), the level, the
    profile offsets, the series's size and its long-run error.

    Why winsorised: a residual enters the errors capped at ``clip`` spreads, so one outlier does not
    inflate the spread for the next fifty samples. A confirmed level shift moves the level and the
    offsets at once (the models would otherwise take dozens of samples to follow a step)."""
    s, x, lim = b.s, b.x, fast.lim
    e_all = np.abs(x - fast.preds)
    errs, mses = fast.errs, fast.mses
    e_clip = np.minimum(e_all, p.clip * np.where(errs > 0, errs, e_all))
    new_errs = _ew_mean(errs, e_clip, r.err, e_all)
    new_mses = _ew_mean(mses, e_clip**2, r.err, e_all**2)
    abs_resid = np.abs(fast.resid)
    return {
        "count": b.n + 1,
        "t_first": np.where(b.first, b.t, s["t_first"]),
        "level": np.where(shifted, x, _follow(fast.level, x, r.level, lim)),
        "abs_mean": fast.abs_mean + r.level * (np.abs(x) - fast.abs_mean),
        "err_long": _ew_mean(
            s["err_long"], np.minimum(abs_resid, p.peak_cap * fast.spread), r.slow, abs_resid
        ),
        "c_daily": _offset(s["c_daily"], b.pd, x, r.level, lim, shifted),
        "c_weekly": _offset(s["c_weekly"], b.pw, x, r.level, lim, shifted),
        **{f"err_{m}": new_errs[k] for k, m in enumerate(_MODELS)},
        **{f"mse_{m}": new_mses[k] for k, m in enumerate(_MODELS)},
        "lo": np.fmin(s["lo"], x),
        "hi": np.fmax(s["hi"], x),
    }


def _learn_profiles(b: _Batch, fast: _Fast, r: _Rates) -> tuple[np.ndarray, np.ndarray]:
    """New values of the daily and weekly bins the samples fell in (a never-seen bin starts at x)."""
    x, lim = b.x, fast.lim
    pd_new = np.where(np.isfinite(b.pd), _follow(b.pd, x, r.daily, lim), x)
    pw_new = np.where(np.isfinite(b.pw), _follow(b.pw, x, r.weekly, lim), x)
    return pd_new, pw_new


def _learn_calibration(
    b: _Batch, fast: _Fast, short: np.ndarray, bounded: _Bounded, slow: _Slow, r: _Rates, p: Params
) -> dict[str, np.ndarray]:
    """New long-run mean and variance of each surprise (spike, shift, bounded, slow), and the
    short means.

    Why not from an unscaled series: its z is measured against the floor and says nothing about its
    usual surprises (one would swamp the calibration for thousands of samples). Surprises enter
    capped at mean + ``calib_cap`` sd for the same reason."""
    s = b.s
    a_c = np.where(fast.scaled, r.calib, 0.0)
    z_mean, z_var = _ew_moments(s["z_mean"], s["z_var"], fast.z, a_c, p.calib_cap)
    s_mean, s_var = _ew_moments(s["s_mean"], s["s_var"], np.abs(short), a_c, p.calib_cap)
    h_mean, h_var = _ew_moments(bounded.mean, bounded.var, bounded.short, a_c, p.calib_cap)
    b_mean, b_var = _ew_moments(s["b_mean"], s["b_var"], slow.zb, a_c, p.calib_cap)
    return {
        "short": short,
        "z_mean": z_mean,
        "z_var": z_var,
        "s_mean": s_mean,
        "s_var": s_var,
        "h_short": bounded.short,
        "h_mean": h_mean,
        "h_var": h_var,
        "b_mean": b_mean,
        "b_var": b_var,
    }


def _learn_slow_view(
    b: _Batch, fast: _Fast, slow: _Slow, shifted: np.ndarray, r: _Rates, p: Params
) -> dict[str, np.ndarray]:
    """New state of the slow view: its level and offsets (rate ``alpha_slow``), the spread of its
    rolling mean, and each model's slow squared error (which model the slow view trusts).

    Why a confirmed level shift resets it: the step is news once (the shift rule); the slow view
    then measures drifts from the new level, not the step again for ``block_m`` samples."""
    s, x, lim = b.s, b.x, fast.lim
    sms = slow.sms
    e2 = (x - fast.preds) ** 2
    e2 = np.minimum(e2, (p.clip**2) * np.where(sms > 0, sms, e2))
    n_sms = _ew_mean(sms, e2, r.slow_err, e2)
    abs_r = np.abs(slow.r)
    return {
        "sl_lvl": np.where(shifted, x, _follow(slow.level, x, r.slow, lim)),
        "sl_cd": _offset(s["sl_cd"], b.pd, x, r.slow, lim, shifted),
        "sl_cw": _offset(s["sl_cw"], b.pw, x, r.slow, lim, shifted),
        "sl_r": np.where(shifted, 0.0, slow.r),
        "sl_err": _ew_mean(s["sl_err"], abs_r, r.slow_err, abs_r),
        **{f"sm_{m}": n_sms[k] for k, m in enumerate(_MODELS)},
    }


@cache
def _htm_prior(c: float, alpha: float) -> tuple[float, float]:
    """Mean of the bounded raw surprise under Gaussian noise (z = |N| / E|N|), and the variance of
    its EW short mean (rate alpha): the prior of the bounded surprise's calibration."""
    g = np.linspace(0.0, _PRIOR_GRID_SD, _PRIOR_GRID_POINTS)
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
