"""Per-tenant ingest rate limit (a token bucket counting events, not requests) and the request body cap.

A batch that names several tenants takes from every bucket or from none, so a refused batch costs nothing,
and tokens taken for a batch the collector then rejects are given back.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping

from fastapi import Request

from tenantpulse.web.errors import ApiError


class TenantRateLimiter:
    """One token bucket per tenant: ``rate`` events/s refill, at most ``burst`` events held."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, last refill time)
        self._lock = threading.Lock()

    def _tokens(self, tenant: str, now: float) -> float:
        tokens, last = self._buckets.get(tenant, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def acquire(self, counts: Mapping[str, int]) -> None:
        """Take ``counts[tenant]`` events from each bucket, or raise 429 (413 if it can never fit)."""
        with self._lock:
            now = self._clock()
            available = {t: self._tokens(t, now) for t in counts}
            for tenant, n in counts.items():
                if n > self.burst:
                    raise batch_too_large(n, self.burst)
                if n > available[tenant]:
                    raise rate_limited(self.rate, n - available[tenant])
            for tenant, n in counts.items():
                self._buckets[tenant] = (available[tenant] - n, now)

    def refund(self, counts: Mapping[str, int]) -> None:
        """Give back tokens for a batch that was refused after ``acquire``."""
        with self._lock:
            now = self._clock()
            for tenant, n in counts.items():
                self._buckets[tenant] = (min(self.burst, self._tokens(tenant, now) + n), now)

    def forget(self, tenant: str) -> None:
        with self._lock:
            self._buckets.pop(tenant, None)


def batch_too_large(n: int, burst: float) -> ApiError:
    return ApiError(
        413,
        "batch_too_large",
        f"{n} events for one tenant exceed the rate-limit burst of {int(burst)}; split the batch",
        field="events",
    )


def rate_limited(rate: float, missing: float) -> ApiError:
    """429 with the seconds until ``missing`` more tokens have come in."""
    wait = math.ceil(missing / rate)
    return ApiError(
        429,
        "rate_limited",
        f"the tenant is over its ingest rate of {rate:g} events/s; retry in {wait}s",
        field="tenant_id",
        headers={"Retry-After": str(max(1, wait))},
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes (before reading it all)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"request body exceeds {limit} bytes", field="body")
