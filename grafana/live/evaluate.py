"""Run a dashboard's queries for one viewer, with the work bounded.

The range is at most ``Limits.max_range``; a range query asks at most ``max_points`` points per series
(the step grows with the range); at most ``concurrency`` queries are in flight for the whole app (one
pool, shared by every viewer, below the gateway's per-tenant limit); each answer keeps at most
``max_series`` series. Grafana's built-in variables get the values Grafana would give them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tenantpulse.grafana.live import frames
from tenantpulse.grafana.live.model import Dashboard, Target
from tenantpulse.grafana.live.read import Reader, ReadError
from tenantpulse.grafana.live.variables import substitute
from tenantpulse.kernel.durations import format_duration

QUERY = "/api/v1/query"
QUERY_RANGE = "/api/v1/query_range"


@dataclass(frozen=True)
class Limits:
    max_points: int = 240  # per series of a range query
    max_range: float = 30 * 86400.0  # seconds
    min_range: float = 60.0
    max_series: int = 50  # per query
    concurrency: int = 4  # queries in flight, whole app
    scrape_interval: float = 15.0  # seconds: what $__rate_interval is made of, as in Grafana


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    step: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def window(range_seconds: float, limits: Limits, end: float | None = None) -> Window:
    """The last ``range_seconds`` (already within the limits), on a step of whole seconds."""
    end = time.time() if end is None else end
    step = float(max(1, math.ceil(range_seconds / limits.max_points)))
    end = math.floor(end / step) * step
    return Window(end - range_seconds, end, step)


def builtins(w: Window, limits: Limits) -> dict[str, str]:
    """Grafana's ``$__interval``, ``$__rate_interval`` (max(interval + scrape, 4 x scrape)), ``$__range``."""
    rate = max(w.step + limits.scrape_interval, 4 * limits.scrape_interval)
    return {
        "__interval": format_duration(w.step),
        "__rate_interval": format_duration(rate),
        "__range": format_duration(w.seconds),
        "__range_s": str(int(w.seconds)),
    }


def _run(reader: Reader, target: Target, expr: str, w: Window) -> Any:
    """Prometheus ``data``, or the error's message (shown on the panel)."""
    try:
        if target.instant:
            return reader.read("query", QUERY, [("query", expr), ("time", f"{w.end:.3f}")])
        params = [
            ("query", expr),
            ("start", f"{w.start:.3f}"),
            ("end", f"{w.end:.3f}"),
            ("step", f"{w.step:g}"),
        ]
        return reader.read("query_range", QUERY_RANGE, params)
    except ReadError as exc:
        return str(exc)


def evaluate(
    dashboard: Dashboard,
    values: Mapping[str, str],
    w: Window,
    reader: Reader,
    pool: ThreadPoolExecutor,
    limits: Limits,
) -> dict[str, dict[str, Any]]:
    """Panel id -> its frame (``frames.frame``), every target queried through ``pool``."""
    every = {**builtins(w, limits), **values}
    pending: list[tuple[int, Target, Future[Any]]] = []
    for panel in dashboard.panels:
        for target in panel.targets:
            expr = substitute(target.expr, every)
            pending.append((panel.id, target, pool.submit(_run, reader, target, expr, w)))
    answers: dict[int, list[tuple[Target, Any]]] = {}
    for panel_id, target, future in pending:
        answers.setdefault(panel_id, []).append((target, future.result()))
    return {
        str(panel.id): frames.frame(panel, answers.get(panel.id, []), limits.max_series)
        for panel in dashboard.panels
    }
