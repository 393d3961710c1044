"""The sidecar's /metrics body, rendered once per cycle and served as ready bytes to every scrape.

The exporter's ``exporters.exposition`` tables are keyed per tenant and updated sample by sample;
the sidecar's values arrive as whole numpy arrays indexed like the detector bank, so it keeps its
own small table and shares only the escaping, number format and headers.

With 100k series x 7 families, ``prometheus_client`` would build a Sample object per value on
every scrape. Here each series' label set is rendered once when the series appears; values live
in numpy arrays indexed like the detector bank; a render only formats the numbers. Series with no
value yet (NaN, e.g. before the first forecast) are left out rather than exposed as NaN, except the
score of a series warming up: it is exposed as NaN, so the series is there (dashboards list it, alert
comparisons are false, ``max_over_time`` skips it) and says it has no score yet, not 0. ``scrape``
adds the process's own ``process_*`` metrics (``exporters.exposition.with_process_metrics``).
"""

from __future__ import annotations

import threading

import numpy as np

from tenantpulse.conventions import catalog as c
from tenantpulse.conventions.exposition import TEXT_CONTENT_TYPE, escape_label_value
from tenantpulse.exporters.exposition import format_value, header, with_process_metrics

SERIES_FAMILIES: tuple[c.Metric, ...] = (
    c.ANOMALY_SCORE,
    c.ANOMALY_EXPECTED,
    c.ANOMALY_LOWER,
    c.ANOMALY_UPPER,
    c.ANOMALY_WARMUP_REMAINING,
)
FORECAST_FAMILIES: tuple[c.Metric, ...] = (c.FORECAST, c.FORECAST_LOWER, c.FORECAST_UPPER)
HEALTH_FAMILIES: tuple[c.Metric, ...] = (
    c.ANOMALY_STALE,
    c.SIDECAR_CYCLE_DURATION,
    c.SIDECAR_SERIES,
    c.SIDECAR_QUERY_ERRORS,
    c.SIDECAR_LAST_SUCCESS,
    c.SIDECAR_STATE_DISCARDED,
)
CONTENT_TYPE = TEXT_CONTENT_TYPE


def _header(metric: c.Metric) -> str:
    return header(metric, openmetrics=False)


class OutputTable:
    """Latest score/band/forecast per bank index, plus the sidecar's health; renders to bytes."""

    def __init__(self, horizon: str, capacity: int = 1024) -> None:
        self.horizon_labels = f',{c.HORIZON}="{escape_label_value(horizon)}"'
        self._lock = threading.Lock()
        self._labels: list[str | None] = [None] * capacity
        self.values = {m.name: np.full(capacity, np.nan) for m in SERIES_FAMILIES + FORECAST_FAMILIES}
        self.warming = np.zeros(capacity, bool)  # series whose score is exposed as NaN (see set_warming)
        self.health: dict[str, float] = {m.name: 0.0 for m in HEALTH_FAMILIES}
        self._series = b""  # the per-series families: rendered once per cycle, kept once
        self._health = b""

    @property
    def capacity(self) -> int:
        return len(self._labels)

    def _grow(self, needed: int) -> None:
        size = self.capacity
        while size <= needed:
            size *= 2
        extra = size - self.capacity
        self._labels.extend([None] * extra)
        for name, arr in self.values.items():
            self.values[name] = np.concatenate([arr, np.full(extra, np.nan)])
        self.warming = np.concatenate([self.warming, np.zeros(extra, bool)])

    def add(self, keys: list[tuple[str, str]], indices: np.ndarray) -> None:
        """Render the label sets of new series once (their values start as missing)."""
        if len(indices) == 0:
            return
        with self._lock:
            if int(indices.max()) >= self.capacity:
                self._grow(int(indices.max()))
            for (tenant, indicator), idx in zip(keys, indices.tolist(), strict=True):
                self._labels[idx] = (
                    f'{{{c.TENANT}="{escape_label_value(tenant)}",{c.INDICATOR}="{escape_label_value(indicator)}"'
                )
                for arr in self.values.values():
                    arr[idx] = np.nan
                self.warming[idx] = False

    def remove(self, indices: np.ndarray) -> None:
        with self._lock:
            for idx in np.asarray(indices).tolist():
                self._labels[idx] = None
            self.warming[indices] = False

    def set(self, metric: c.Metric, indices: np.ndarray, values: np.ndarray) -> None:
        self.values[metric.name][indices] = values

    def set_warming(self, indices: np.ndarray, warming: np.ndarray) -> None:
        """Mark series as warming up: their score (NaN) is exposed as NaN instead of left out."""
        self.warming[indices] = warming

    def set_health(self, metric: c.Metric, value: float) -> None:
        self.health[metric.name] = float(value)

    def get(self, metric: c.Metric, idx: int) -> float:
        return float(self.values[metric.name][idx])

    def render_series(self) -> None:
        """Re-render the per-series families (call after a cycle or forecast refresh updated values)."""
        with self._lock:
            active = np.fromiter((i for i, lab in enumerate(self._labels) if lab is not None), dtype=np.intp)
            labels = [self._labels[i] for i in active.tolist()]
            parts: list[str] = []
            for metric in SERIES_FAMILIES + FORECAST_FAMILIES:
                closing = (self.horizon_labels if metric in FORECAST_FAMILIES else "") + "} "
                vals = self.values[metric.name][active]
                known = ~np.isnan(vals)
                keep = np.flatnonzero(known | self.warming[active] if metric is c.ANOMALY_SCORE else known)
                parts.append(_header(metric))
                if len(keep) == len(vals):
                    pairs = zip(labels, vals.tolist(), strict=True)
                else:
                    pairs = zip([labels[k] for k in keep.tolist()], vals[keep].tolist(), strict=True)
                name = metric.name
                if np.isfinite(vals[keep]).all():
                    parts.append("".join([f"{name}{lab}{closing}{v!r}\n" for lab, v in pairs]))
                else:
                    parts.append("".join([f"{name}{lab}{closing}{format_value(v)}\n" for lab, v in pairs]))
            self._series = "".join(parts).encode()
        self.render_health()

    def render_health(self) -> None:
        """Re-render only the health gauges, reusing the last series text (cheap; used while stale)."""
        self._health = "".join(
            f"{_header(m)}{m.name} {format_value(self.health[m.name])}\n" for m in HEALTH_FAMILIES
        ).encode()

    def body(self) -> bytes:
        """The last rendered exposition (a scrape never waits for a render, and only the series text is
        held between scrapes: the concatenation is per scrape)."""
        return self._health + self._series

    def scrape(self) -> bytes:
        """What /metrics serves: ``body()`` and the sidecar process's own ``process_*`` metrics."""
        return with_process_metrics(self.body())
