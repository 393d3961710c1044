"""Client for any Prometheus-compatible HTTP query API (Prometheus, Thanos, Mimir, VictoriaMetrics).

Only what the sidecar needs: instant ``query`` (one newest sample per series, so a cycle costs
O(series)), chunked ``query_range`` (backfill once; a server caps points per series per request),
the auth styles those servers use, timeouts, and retries with exponential backoff (urllib3's
``Retry``) on connection errors, 429 and 5xx. A 4xx other than 429 means the query itself is wrong
and is not retried.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tenantpulse.kernel.errors import UsageError
from tenantpulse.kernel.gcpause import gc_paused

RETRY_STATUSES = (429, 500, 502, 503, 504)
# Sent with every query. VictoriaMetrics hides samples younger than its -search.latencyOffset (default
# 30s): an instant query "now" answers the value of 30 s ago (nocache=1 turns that off), and a range
# query repeats the value at now - 30s over its last 30 s (latency_offset=0s turns that off from
# VictoriaMetrics 1.88 on; before, see ServiceConfig.latency_offset). Prometheus, Thanos and Mimir
# ignore parameters they do not know.
FRESH = {"nocache": "1", "latency_offset": "0s"}
# Prometheus refuses range queries over 11,000 points per series; stay below it.
MAX_POINTS_PER_REQUEST = 10_000


class QueryError(Exception):
    """A query failed: unreachable server, retries exhausted, or an error answer from the API."""

    def __init__(self, message: str, status: int | None = None, retriable: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.retriable = retriable


@dataclass(frozen=True)
class Vector:
    """An instant-query answer: one sample per series, values in arrays aligned with ``labels``."""

    labels: list[dict[str, str]]
    times: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class RangeSeries:
    """One series of a range-query answer."""

    labels: dict[str, str]
    times: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class Auth:
    """How to authenticate against the query API; at most one of bearer token / basic auth."""

    bearer_token: str | None = None
    basic_auth: tuple[str, str] | None = None
    org_id: str | None = None  # X-Scope-OrgID: the tenant header of Mimir, Cortex, Loki-style servers

    def __post_init__(self) -> None:
        if self.bearer_token and self.basic_auth:
            raise UsageError("give either a bearer token or basic auth, not both")


class PrometheusReader:
    """Queries one Prometheus-compatible base URL (e.g. ``http://prom:9090`` or Mimir's ``.../prometheus``)."""

    def __init__(
        self,
        url: str,
        auth: Auth | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"prometheus url {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=backoff,
            backoff_max=max_backoff,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "POST"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        auth = auth or Auth()
        if auth.bearer_token:
            self.session.headers["Authorization"] = f"Bearer {auth.bearer_token}"
        if auth.basic_auth:
            self.session.auth = auth.basic_auth
        if auth.org_id:
            self.session.headers["X-Scope-OrgID"] = auth.org_id

    def close(self) -> None:
        self.session.close()

    def _call(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        """POST form-encoded (long PromQL fits; every compatible server accepts it) and unwrap ``data``."""
        try:
            resp = self.session.post(f"{self.url}{path}", data=params | FRESH, timeout=self.timeout)
        except requests.RequestException as exc:
            raise QueryError(f"{path}: {type(exc).__name__}: {exc}") from None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("status") != "success":
            detail = body.get("error") if isinstance(body, dict) else resp.text[:200]
            retriable = resp.status_code in RETRY_STATUSES
            raise QueryError(f"{path}: HTTP {resp.status_code}: {detail}", resp.status_code, retriable)
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> Vector:
        """Instant query: the newest sample of each series (a scalar answer becomes one unlabelled row)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = repr(float(at))
        with gc_paused():  # a 20,000-series answer: see tenantpulse.kernel.gcpause
            return parse_vector(self._call("/api/v1/query", params))

    def query_range(
        self, expr: str, start: float, end: float, step: float, max_points: int = MAX_POINTS_PER_REQUEST
    ) -> list[RangeSeries]:
        """Range query split into chunks of at most ``max_points`` steps, stitched back per series."""
        if step <= 0 or end < start:
            raise ValueError("query_range needs step > 0 and end >= start")
        pieces: dict[
            tuple[tuple[str, str], ...], tuple[dict[str, str], list[np.ndarray], list[np.ndarray]]
        ] = {}
        for lo, hi in _chunks(start, end, step, max_points):
            with gc_paused():
                data = self._call(
                    "/api/v1/query_range",
                    {"query": expr, "start": repr(lo), "end": repr(hi), "step": repr(float(step))},
                )
            if data.get("resultType") != "matrix":
                raise QueryError(
                    f"query_range: expected a matrix, got {data.get('resultType')}", retriable=False
                )
            for row in data["result"]:
                labels = row["metric"]
                key = tuple(sorted(labels.items()))
                points = np.array(row["values"], dtype=object).reshape(-1, 2)
                entry = pieces.setdefault(key, (labels, [], []))
                entry[1].append(points[:, 0].astype(np.float64))
                entry[2].append(points[:, 1].astype(np.float64))
        return [
            RangeSeries(labels, np.concatenate(ts), np.concatenate(vs)) for labels, ts, vs in pieces.values()
        ]


def _chunks(start: float, end: float, step: float, max_points: int) -> Iterator[tuple[float, float]]:
    """Consecutive [lo, hi] windows on the step grid; each holds at most ``max_points`` points, none overlap."""
    span = step * (max_points - 1)
    lo = float(start)
    while lo <= end:
        hi = min(lo + span, float(end))
        yield lo, hi
        lo = hi + step


def parse_vector(data: dict[str, Any]) -> Vector:
    """Turn the ``data`` of an instant query into arrays (``float`` parses NaN and +Inf spellings)."""
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar" and isinstance(result, list):
        return Vector([{}], np.array([float(result[0])]), np.array([float(result[1])]))
    if kind != "vector" or not isinstance(result, list):
        raise QueryError(f"query: expected a vector, got {kind}", retriable=False)
    n = len(result)
    times = np.empty(n)
    values = np.empty(n)
    labels: list[dict[str, str]] = []
    append = labels.append
    for i, row in enumerate(result):
        append(row["metric"])
        t, v = row["value"]
        times[i] = t
        values[i] = float(v)
    return Vector(labels, times, values)
