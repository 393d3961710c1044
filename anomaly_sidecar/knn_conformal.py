"""kNN conformal novelty of each series' recent shape, vectorised across series.

After KNN-CAD (Ishimtsev et al. 2017, the "knncad" detector of NAB): the last ``EMBED`` values, minus
their mean, are compared with every earlier such window in a short history; the non-conformity is the
mean distance to the ``K`` nearest. Its conformal p-value is its rank among the series' recent
non-conformities. A shape never seen lately has a small p-value even when each value alone is ordinary,
which the detector uses to rank its own candidate alarms.

State per series: ``HISTORY`` float32 values and ``CALIBRATION`` int16 quantised log non-conformities
(only their order matters; int16 compares fast) = 400 + 1,000 = 1,400 bytes.
"""

from __future__ import annotations

import numpy as np

EMBED = 10  # values per window (the shape compared)
HISTORY = 100  # values kept: the current window is compared with the HISTORY - EMBED earlier ones
CALIBRATION = 500  # recent non-conformities the current one is ranked against
K = 3  # nearest windows averaged
READY = CALIBRATION // 2  # no p-value (1.0) until this many non-conformities are known
STEPS = 256  # log non-conformities are kept as int16 in 1/STEPS steps (only their order matters)
EMPTY = np.iinfo(np.int16).min  # a slot not written yet


def empty(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Fresh state for ``n`` series: value history (NaN = not seen) and an empty calibration ring."""
    return np.full((n, HISTORY), np.nan, np.float32), np.full((n, CALIBRATION), EMPTY, np.int16)


def step(
    hist: np.ndarray, calib: np.ndarray, x: np.ndarray, ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Conformal p-value of the window ending at ``x`` (1.0 where not ``ok`` or not ready yet), the
    updated history (rows not ``ok`` unchanged), and the quantised non-conformity with the mask of rows
    that should write it into their calibration ring (``remember``)."""
    h = np.concatenate([hist[:, 1:], np.where(ok, x, np.nan)[:, None].astype(np.float32)], axis=1)
    now = h[:, HISTORY - EMBED :]
    past = HISTORY - EMBED  # number of earlier windows
    # Squared distance between mean-removed windows: sum d^2 - (sum d)^2 / EMBED, d = past - now.
    s1 = np.zeros((h.shape[0], past), np.float32)
    s2, d = np.zeros_like(s1), np.empty_like(s1)
    for lag in range(EMBED):  # in place: this loop is most of the cost at 100k series
        np.subtract(h[:, lag : lag + past], now[:, lag : lag + 1], out=d)
        s1 += d
        s2 += np.multiply(d, d, out=d)
    d2 = np.maximum(s2 - s1 * s1 / EMBED, 0.0)
    d2 = np.where(np.isfinite(d2), d2, np.inf)  # windows not filled yet
    nearest = np.partition(d2, K - 1, axis=1)[:, :K]
    alpha = np.sqrt(nearest).mean(axis=1)
    with np.errstate(divide="ignore"):
        q = np.clip(np.round(np.log(alpha) * STEPS), EMPTY + 1, np.iinfo(np.int16).max)
    q = np.where(np.isfinite(alpha), q, 0).astype(np.int16)
    count = (calib != EMPTY).sum(axis=1)
    p = ((calib >= q[:, None]).sum(axis=1) + 1.0) / (count + 1.0)
    learn = ok & np.isfinite(alpha)
    return np.where(learn & (count >= READY), p, 1.0), np.where(ok[:, None], h, hist), q, learn


def remember(calib: np.ndarray, rows: np.ndarray, seen: np.ndarray, q: np.ndarray) -> None:
    """Write ``q`` into each row's ring at the slot of its ``seen``-th sample (oldest overwritten)."""
    calib[rows, seen.astype(np.intp) % CALIBRATION] = q
