"""What the sidecar shows as a series' score: held for the episode, then decaying at a stated pace.

The detector scores an episode once (at its start, or when it grows): the samples after that score
low although the indicator is still off. A graph or a scrape that misses the one high sample misses
the episode. So the exposed score is the detector's, held:

- an **episode** opens when the score reaches the threshold; it remembers the band the sidecar
  expected at that sample (``lower``/``upper``) and the episode's peak score;
- while the value stays outside that remembered band (for at most ``EPISODE_MAX_SECONDS``), the shown
  score is the peak;
- after that, the shown score falls by ``DECAY_PER_MINUTE`` per minute of sample time (never below the
  detector's own score), so a one-sample peak of 1.0 stays at or above 0.9 (``medium``) for a minute and
  above 0.8 (``high``) for two; the episode closes when the shown score is below the threshold.

One slot per series, indexed like the detector bank; all updates are vectorised.
"""

from __future__ import annotations

import numpy as np

DECAY_PER_MINUTE = 0.1
EPISODE_MAX_SECONDS = 3600.0  # a level that stays off for an hour is the new normal: stop holding


class EpisodeHold:
    """The shown score of every series, and its open episode (start time NaN when there is none)."""

    def __init__(self) -> None:
        self.shown = np.zeros(0)
        self.at = np.zeros(0)
        self.start = np.zeros(0)
        self.peak = np.zeros(0)
        self.lo = np.zeros(0)
        self.hi = np.zeros(0)

    def grow(self, capacity: int) -> None:
        extra = capacity - self.shown.size
        if extra > 0:
            for name in ("shown", "at", "start", "peak", "lo", "hi"):
                setattr(self, name, np.concatenate([getattr(self, name), np.full(extra, np.nan)]))

    def reset(self, idx: np.ndarray) -> None:
        """Forget the series in these slots (dropped, or new)."""
        for arr in (self.shown, self.at, self.start, self.peak, self.lo, self.hi):
            arr[idx] = np.nan

    def update(
        self,
        idx: np.ndarray,
        t: np.ndarray,
        x: np.ndarray,
        score: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        threshold: float,
    ) -> np.ndarray:
        """The score to show for one new sample per series (``idx`` unique), given the detector's."""
        elapsed = np.where(np.isnan(self.at[idx]), np.inf, t - self.at[idx])
        decayed = np.nan_to_num(self.shown[idx]) - DECAY_PER_MINUTE / 60.0 * np.maximum(elapsed, 0.0)
        start = self.start[idx]
        is_open = ~np.isnan(start)
        off = (x < self.lo[idx]) | (x > self.hi[idx])  # NaN (a missing sample) is not off
        holding = is_open & off & (t - start <= EPISODE_MAX_SECONDS)
        shown = np.maximum(np.where(holding, np.fmax(decayed, self.peak[idx]), decayed), score)
        shown = np.maximum(shown, 0.0)
        opened = ~is_open & (score >= threshold)
        closed = shown < threshold
        self.start[idx] = np.where(closed, np.nan, np.where(opened, t, start))
        self.peak[idx] = np.where(closed, np.nan, np.fmax(self.peak[idx], score))
        self.lo[idx] = np.where(opened, lower, self.lo[idx])
        self.hi[idx] = np.where(opened, upper, self.hi[idx])
        self.shown[idx] = shown
        self.at[idx] = t
        return shown
