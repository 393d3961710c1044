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
from tenantpulse.anomaly_sidecar.forecast import forecast as fit_forecast
from tenantpulse.anomaly_sidecar.reader import Auth, PrometheusReader, RangeSeries
from tenantpulse.conventions import catalog as c
from tenantpulse.conventions import indicators
from tenantpulse.kernel.durations import parse_duration

MAX_POINTS = 2000  # history points per forecast: enough for several seasons, cheap to fit


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


def forecast_series(
    series: RangeSeries, indicator: str, horizon: float, confidence: float, step: float
) -> ForecastResult | None:
    """Fit one history; None when there are too few finite points to say anything."""
    ok = np.isfinite(series.values)
    if ok.sum() < 3:
        return None
    f = fit_forecast(series.values, step, horizon, confidence)  # inner gaps are interpolated, on the grid
    mean, lower, upper = (np.atleast_1d(np.asarray(a, float)) for a in (f.mean, f.lower, f.upper))
    last = float(series.times[ok][-1])
    times = last + np.atleast_1d(np.asarray(f.times, float))
    return ForecastResult(
        _tenant(series), indicator, times, mean, lower, upper, confidence, step, int(ok.sum())
    )


def forecast_grid(
    horizon: str, history: str | None = None, step: str | None = None
) -> tuple[float, float, float]:
    """``(horizon, history, step)`` in seconds as ``forecast`` uses them, defaults filled in.

    History defaults to twice the horizon (at least a day, so daily seasonality can be seen) and the
    step to whatever keeps it near ``MAX_POINTS`` points (a multiple of 15 s). The HTTP API checks its
    per-request limits on these before any query is sent.
    """
    h = parse_duration(horizon)
    span = parse_duration(history) if history else max(2 * h, 86400.0)
    s = parse_duration(step) if step else max(15.0, float(np.ceil(span / MAX_POINTS / 15.0) * 15.0))
    return h, span, s


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
    ) -> dict[str, ForecastResult]:
        """Per tenant: the indicator ``metric`` forecast ``horizon`` ahead (defaults: ``forecast_grid``)."""
        if not 0 < confidence_interval < 1:
            raise ValueError("confidence_interval must be between 0 and 1")
        ind = indicators.get(metric)
        h, span, s = forecast_grid(horizon, history, step)
        end = time.time()
        expr = ind.promql([tenant_id] if tenant_id else None, window=self.rate_window)
        out: dict[str, ForecastResult] = {}
        for series in self.reader.query_range(expr, end - span, end, s):
            result = forecast_series(series, ind.name, h, confidence_interval, s)
            if result is not None:
                out[result.tenant_id] = result
        return out


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


__all__ = ["AnomalyDetector", "Detection", "ForecastResult", "PredictiveAnalytics", "forecast_grid"]
