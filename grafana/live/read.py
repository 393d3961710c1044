"""Where the live view's queries go: a Prometheus HTTP API (Prometheus itself, or the gateway with the
viewer's key), behind one small interface so the gateway's own route can read in-process instead."""

from __future__ import annotations

import json
from typing import Any, Protocol

import requests


class ReadError(Exception):
    """A query that failed: shown on its panel, as Grafana shows a datasource error."""


class Reader(Protocol):
    def read(self, endpoint: str, path: str, params: list[tuple[str, str]]) -> Any:
        """``data`` of a Prometheus API answer (``endpoint``: query, query_range or label_values)."""
        ...


def data_of(status: int, body: bytes) -> Any:
    """``data`` of a Prometheus-shaped answer, or ReadError with its own message."""
    try:
        answer = json.loads(body)
    except ValueError:
        raise ReadError(f"HTTP {status}: not Prometheus JSON") from None
    if not isinstance(answer, dict) or answer.get("status") != "success":
        message = answer.get("error") if isinstance(answer, dict) else None
        raise ReadError(f"HTTP {status}: {message or 'failed'}")
    return answer.get("data")


class HttpReader:
    """A Prometheus query API at ``base_url``; ``key`` (the viewer's) goes as a bearer token."""

    def __init__(self, base_url: str, key: str | None, session: requests.Session, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.session = session
        self.timeout = timeout

    def read(self, endpoint: str, path: str, params: list[tuple[str, str]]) -> Any:
        method = "GET" if endpoint == "label_values" else "POST"
        try:
            r = self.session.request(
                method,
                self.base_url + path,
                params=params if method == "GET" else None,
                data=params if method == "POST" else None,
                headers=self.headers,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise ReadError(f"cannot reach the query API ({type(exc).__name__})") from None
        return data_of(r.status_code, r.content)
