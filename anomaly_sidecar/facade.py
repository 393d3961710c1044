"""The seed's Python API, answered from any Prometheus-compatible server.

    AnomalyDetector(prometheus_url).detect("t1", metrics=["error_rate"], window="1h")
    PredictiveAnalytics(prometheus_url).forecast("request_rate", horizon="30d", confidence_interval=0.95)

``metrics`` are indicator names (``exporters.indicators``). Detection replays a context period before
the window through a fresh detector (online, as the sidecar would have seen it) so the window is
scored by a warmed-up model; forecasting reads a history proportional to the horizon.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tenantpulse.anomaly_sidecar.detector import DetectorBank
from tenantpulse.anomaly_sidecar.forecast import DAY, InsufficientHistory, history_needed
from tenantpulse.anomaly_sidecar.forecast import forecast as fit_forecast
from tenantpulse.anomaly_sidecar.reader import Auth, PrometheusReader, RangeSeries
from tenantpulse.conventions import catalog as c
from tenantpulse.conventions import indicators
from tenantpulse.kernel.durations import format_duration, parse_duration

MAX_POINTS = 2000  # history points per forecast: enough for several seasons, cheap to fit
# Default steps: multiples of 15 s that divide a day, so a daily or weekly season is a whole number of
# steps and stays in phase over a long horizon (2595 s, say, would drift 13 minutes a day).
DAY_STEPS = tuple(s for s in range(15, int(DAY) + 1, 15) if int(DAY) % s == 0)
PROBE_STEP = 15.0  # resolution of the look for series younger than one forecast step
_WAIT = "shorten the horizon or wait for more history"


@dataclass(frozen=True)
class Detection:
    """Scores of one tenant's indicator over the window (arrays aligned with ``times``)."""

    tenant_id: str
    indicator: str
    times: np.ndarray
    values: np.ndarray
    score: np.ndarray
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    alarm: np.ndarray
    threshold: float

    @property
    def anomalies(self) -> list[float]:
        """Timestamps where the score crossed the alarm threshold."""
        return self.times[self.alarm].tolist()

    @property
    def score_now(self) -> float | None:
        return float(self.score[-1]) if self.score.size else None


@dataclass(frozen=True)
class ForecastResult:
    """Forecast of one tenant's indicator: future times with mean and interval."""

    tenant_id: str
    indicator: str
    times: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    confidence: float
    step_seconds: float
    history_points: int


def _reader(
    prometheus_url: str | None, reader: PrometheusReader | None, auth: Auth | None
) -> PrometheusReader:
    if reader is not None:
        return reader
    if prometheus_url is None:
        raise ValueError("give prometheus_url or reader")
    return PrometheusReader(prometheus_url, auth=auth)


def _tenant(series: RangeSeries) -> str:
    return series.labels.get(c.TENANT, "")


class ForecastUnavailable(KeyError, ValueError):
    """No forecast for this tenant, and why: no series at all, or less history than the horizon needs
    (then ``needed_seconds`` and ``have_seconds`` say how much)."""

    def __init__(
        self, tenant_id: str, reason: str, needed_seconds: float | None = None, have_seconds: float = 0.0
    ) -> None:
        super().__init__(tenant_id)
        self.tenant_id = tenant_id
        self.reason = reason
        self.needed_seconds = needed_seconds
        self.have_seconds = have_seconds

    def __str__(self) -> str:
        return self.reason


class Forecasts(dict[str, ForecastResult]):
    """Per tenant, its forecast; ``forecasts[t]`` of a tenant without one raises ForecastUnavailable
    saying why (``unavailable`` holds those reasons for the tenants Prometheus returned)."""

    def __init__(self, indicator: str, history: float) -> None:
        super().__init__()
        self.indicator = indicator
        self.history = history
        self.unavailable: dict[str, ForecastUnavailable] = {}

    def __missing__(self, tenant_id: str) -> ForecastResult:
        raise self.why_not(tenant_id)

    def why_not(self, tenant_id: str) -> ForecastUnavailable:
        """Why this tenant has no forecast: too little history, or no series in the history read."""
        return self.unavailable.get(tenant_id) or ForecastUnavailable(
            tenant_id, f"{tenant_id}: no {self.indicator} series in the last {format_duration(self.history)}"
        )


def on_grid(series: RangeSeries, step: float) -> np.ndarray:
    """The answer's values on its step grid: a step Prometheus left out (no sample) becomes NaN."""
    if not series.times.size:
        return np.empty(0)
    slot = np.round((series.times - series.times[0]) / step).astype(np.intp)
    grid = np.full(int(slot[-1]) + 1, np.nan)
    grid[slot] = series.values
    return grid


def forecast_series(
    series: RangeSeries, indicator: str, horizon: float, confidence: float, step: float
) -> ForecastResult:
    """Fit one history (inner gaps bridged), bounded to the indicator's domain.

    ForecastUnavailable, naming what is needed and what there is, when the history is too short."""
    tenant = _tenant(series)
    values = on_grid(series, step)
    ok = np.isfinite(values)
    try:
        f = fit_forecast(values, step, horizon, confidence)
    except InsufficientHistory as exc:
        reason = f"{tenant}: {indicator}: {exc}; {_WAIT}"
        raise ForecastUnavailable(tenant, reason, exc.needed_seconds, exc.have_seconds) from None
    ind = indicators.INDICATORS.get(indicator)
    lo, hi = ind.domain if ind else (-np.inf, np.inf)
    mean, lower, upper = (np.clip(np.asarray(a, float), lo, hi) for a in (f.mean, f.lower, f.upper))
    last = float(series.times[-1])
    times = last + np.asarray(f.times, float)
    return ForecastResult(tenant, indicator, times, mean, lower, upper, confidence, step, int(ok.sum()))


def forecast_grid(
    horizon: str, history: str | None = None, step: str | None = None
) -> tuple[float, float, float]:
    """``(horizon, history, step)`` in seconds as ``forecast`` uses them, defaults filled in.

    History defaults to twice the horizon (at least a day, so daily seasonality can be seen; a server
    that holds less is read as far back as it goes) and the step to the shortest of ``DAY_STEPS`` that
    keeps it within ``MAX_POINTS`` points. The HTTP API checks its per-request limits on these before
    any query is sent.
    """
    h = parse_duration(horizon)
    span = parse_duration(history) if history else max(2 * h, DAY)
    if step:
        return h, span, parse_duration(step)
    fine = span / MAX_POINTS
    s = next((d for d in DAY_STEPS if d >= fine), float(np.ceil(fine / DAY) * DAY))
    return h, span, float(s)


class PredictiveAnalytics:
    """Forecasts of per-tenant indicators with prediction intervals."""

    def __init__(
        self,
        prometheus_url: str | None = None,
        reader: PrometheusReader | None = None,
        auth: Auth | None = None,
        rate_window: str = "5m",
    ) -> None:
        self.reader = _reader(prometheus_url, reader, auth)
        self.rate_window = rate_window

    def forecast(
        self,
        metric: str,
        horizon: str = "30d",
        confidence_interval: float = 0.95,
        tenant_id: str | None = None,
        history: str | None = None,
        step: str | None = None,
    ) -> Forecasts:
        """Per tenant: the indicator ``metric`` forecast ``horizon`` ahead (defaults: ``forecast_grid``).

        A tenant with too little history is left out, its reason in ``unavailable`` (and raised by
        ``forecasts[tenant]``); when no tenant can be forecast at all, ForecastUnavailable is raised."""
        if not 0 < confidence_interval < 1:
            raise ValueError("confidence_interval must be between 0 and 1")
        ind = indicators.get(metric)
        h, span, s = forecast_grid(horizon, history, step)
        end = time.time()
        expr = ind.promql([tenant_id] if tenant_id else None, window=self.rate_window)
        out = Forecasts(ind.name, span)
        for series in self.reader.query_range(expr, end - span, end, s):
            if not np.isfinite(series.values).any():
                continue  # no sample in the history read: as if absent
            try:
                result = forecast_series(series, ind.name, h, confidence_interval, s)
            except ForecastUnavailable as exc:
                out.unavailable[exc.tenant_id] = exc
                continue
            out[result.tenant_id] = result
        if not out:
            self._probe(out, expr, end, s, h)
            raise _why_none(out, tenant_id)
        return out

    def _probe(self, out: Forecasts, expr: str, end: float, step: float, horizon: float) -> None:
        """Nothing to forecast: look at the last two steps at ``PROBE_STEP``. A series younger than that
        (a Prometheus started minutes ago) has at most one sample on the step grid, so only this look
        can say how much history it has."""
        for series in self.reader.query_range(expr, end - 2 * step, end, PROBE_STEP):
            tenant = _tenant(series)
            if not series.times.size or series.times[0] <= end - 2 * step + PROBE_STEP:
                continue  # older than the look: the step grid's figure stands
            have = float(series.times[-1] - series.times[0]) + PROBE_STEP
            needed = history_needed(horizon, step)
            reason = f"{tenant}: {out.indicator}: {InsufficientHistory(needed, have, horizon)}; {_WAIT}"
            out.unavailable[tenant] = ForecastUnavailable(tenant, reason, needed, have)


def _why_none(out: Forecasts, tenant_id: str | None) -> ForecastUnavailable:
    """Why no tenant has a forecast: the asked tenant's reason, the longest history there is, or no series."""
    if tenant_id is not None:
        return out.why_not(tenant_id)
    if not out.unavailable:
        return ForecastUnavailable(
            "", f"no {out.indicator} series in the last {format_duration(out.history)}"
        )
    best = max(out.unavailable.values(), key=lambda e: e.have_seconds)
    return ForecastUnavailable(
        best.tenant_id,
        f"no tenant has enough history; the longest is {best.reason}",
        best.needed_seconds,
        best.have_seconds,
    )


class AnomalyDetector:
    """Anomaly scores of a tenant's indicators over a recent window."""

    def __init__(
        self,
        prometheus_url: str | None = None,
        reader: PrometheusReader | None = None,
        auth: Auth | None = None,
        sensitivity: str = "medium",
        step: str = "1m",
        context: str = "1d",
        rate_window: str = "5m",
    ) -> None:
        self.reader = _reader(prometheus_url, reader, auth)
        self.sensitivity = sensitivity
        self.step = parse_duration(step)
        self.context = parse_duration(context)
        self.rate_window = rate_window
        DetectorBank(sensitivity)  # fail now, naming the valid presets, not at the first detect

    def detect(
        self, tenant_id: str, metrics: Sequence[str] | None = None, window: str = "1h"
    ) -> dict[str, Detection]:
        """Per indicator (default: the sidecar's watched ones): scores over ``window``."""
        names = list(metrics or indicators.WATCHED)
        chosen = [indicators.get(n) for n in names]
        span = parse_duration(window)
        end = time.time()
        start = end - span - self.context
        warmup = max(1, int(self.context / self.step) // 2)
        out: dict[str, Detection] = {}
        for ind in chosen:
            rows = self.reader.query_range(
                ind.promql([tenant_id], window=self.rate_window), start, end, self.step
            )
            series = next((r for r in rows if _tenant(r) == tenant_id), None)
            times = np.empty(0) if series is None else series.times
            values = np.empty(0) if series is None else series.values
            bank = DetectorBank(self.sensitivity, warmup=warmup)
            idx = bank.add(1)
            cols = {k: np.zeros(times.size) for k in ("score", "expected", "lower", "upper")}
            alarm = np.zeros(times.size, bool)
            for j in range(times.size):  # one series: the online replay is inherently sequential
                r = bank.update(idx, times[j : j + 1], values[j : j + 1])
                for k in cols:
                    cols[k][j] = getattr(r, k)[0]
                alarm[j] = r.alarm[0]
            keep = times >= end - span
            out[ind.name] = Detection(
                tenant_id,
                ind.name,
                times[keep],
                values[keep],
                cols["score"][keep],
                cols["expected"][keep],
                cols["lower"][keep],
                cols["upper"][keep],
                alarm[keep],
                bank.threshold,
            )
        return out


__all__ = [
    "AnomalyDetector",
    "Detection",
    "ForecastResult",
    "ForecastUnavailable",
    "Forecasts",
    "PredictiveAnalytics",
    "forecast_grid",
]
