"""The exporter's connection to Redis or Redis Cluster: short timeouts, a few retries, reconnection.

redis-py reconnects by itself: a command on a dropped connection opens a new one (with ``retry``),
and a connection idle for ``HEALTH_CHECK_INTERVAL`` is PINGed before use. A cluster client is built
on first use, not at start, since building one asks the cluster for its slots: an exporter started
before its Redis serves ``/metrics`` and fails ``/readyz`` until Redis answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import structlog
from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import (
    BusyLoadingError,
    ClusterError,
    ConnectionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    TimeoutError,
    TryAgainError,
)
from redis.retry import Retry

from tenantpulse.exporters.shared_state import SharedStateUnavailable

SOCKET_TIMEOUT = 1.0  # seconds a command may take before the request is answered 503
CONNECT_TIMEOUT = 0.5
HEALTH_CHECK_INTERVAL = 10  # seconds idle before a pooled connection is PINGed before use
RETRIES = 2  # on a connection error, with 10-100 ms back-off: rides over a Redis restart's first moments
# Errors that mean "Redis cannot take this now", answered 503; any other error is a bug (500, logged).
UNAVAILABLE: tuple[type[Exception], ...] = (
    ConnectionError,
    TimeoutError,
    BusyLoadingError,
    ClusterError,
    RedisClusterException,
    ReadOnlyError,
    TryAgainError,
    OutOfMemoryError,
)
SCHEMES = ("redis", "rediss", "unix")

log = structlog.get_logger("tenantpulse.exporter.redis")
T = TypeVar("T")


def redacted(url: str) -> str:
    """The URL without credentials, for logs and ``--check``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path if parts.scheme == 'unix' else ''}"


class RedisConnection:
    """One client for the process (thread-safe pool); ``run`` turns unavailability into
    ``SharedStateUnavailable`` and keeps ``up`` (what ``tenantpulse_exporter_redis_up`` shows)."""

    def __init__(self, url: str, cluster: bool = False) -> None:
        self.url = url
        self.cluster = cluster
        self.up = False
        self._client: Redis | RedisCluster | None = None
        self._scripts: dict[str, Script] = {}
        self._lock = threading.Lock()

    def _options(self) -> dict[str, Any]:
        return {
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "health_check_interval": HEALTH_CHECK_INTERVAL,
            "retry": Retry(ExponentialBackoff(cap=0.1, base=0.01), RETRIES),
        }

    def client(self) -> Redis | RedisCluster:
        with self._lock:
            if self._client is None:
                if self.cluster:
                    self._client = RedisCluster.from_url(self.url, **self._options())
                else:
                    self._client = Redis.from_url(
                        self.url, retry_on_error=[ConnectionError, TimeoutError], **self._options()
                    )
            return self._client

    def script(self, lua: str) -> Script:
        """The script, run by EVALSHA (loaded again by redis-py after a restart wiped the cache)."""
        script = self._scripts.get(lua)
        if script is None:
            script = self._scripts[lua] = self.client().register_script(lua)
        return script

    def run(self, what: Callable[[Redis | RedisCluster], T]) -> T:
        try:
            result = what(self.client())
        except UNAVAILABLE as exc:
            if self.up:
                log.warning("redis unreachable", url=redacted(self.url), error=type(exc).__name__)
            self.up = False
            raise SharedStateUnavailable(type(exc).__name__) from exc
        if not self.up:
            log.info("redis reachable", url=redacted(self.url))
        self.up = True
        return result

    def ping(self) -> bool:
        try:
            return bool(self.run(lambda r: r.ping()))
        except SharedStateUnavailable:
            return False

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
                self._scripts.clear()
