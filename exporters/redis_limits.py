"""The per-tenant rate limit shared by every replica: one token bucket per tenant in Redis.

The bucket is read, refilled and taken from in one Lua script (atomic, run by EVALSHA), on Redis's
own clock (``TIME``), so replicas whose clocks differ still drain one bucket at one rate. A bucket
expires once it would be full again: a missing key is a full bucket. Same interface and answers as
``limits.TenantRateLimiter``; a batch naming several tenants takes from each in turn and gives back
what it took when one refuses (tenants' buckets live in different cluster slots).
"""

from __future__ import annotations

from collections.abc import Mapping

from tenantpulse.exporters import redis_keys
from tenantpulse.exporters.limits import batch_too_large, rate_limited
from tenantpulse.exporters.redis_client import RedisConnection
from tenantpulse.exporters.shared_state import SharedStateUnavailable

# KEYS[1] the bucket; ARGV rate, burst, n, take (1) or give back (0). Returns {taken 0/1, tokens}.
BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(held[1]), tonumber(held[2])
if tokens == nil then tokens, at = burst, now end
if now > at then tokens = math.min(burst, tokens + (now - at) * rate) else now = at end
if ARGV[4] == '1' then
  if n > tokens then return {0, tostring(tokens)} end
  tokens = tokens - n
else
  tokens = math.min(burst, tokens + n)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {1, tostring(tokens)}
"""


class RedisRateLimiter:
    """``rate`` events/s per tenant across all replicas, at most ``burst`` held."""

    def __init__(self, redis: RedisConnection, rate: float, burst: float) -> None:
        self.redis = redis
        self.rate = rate
        self.burst = burst

    def _bucket(self, tenant: str, n: int, take: bool) -> tuple[bool, float]:
        script = self.redis.script(BUCKET)
        args: list[str | int] = [repr(self.rate), repr(self.burst), n, 1 if take else 0]
        ok, tokens = self.redis.run(lambda _: script(keys=[redis_keys.bucket(tenant)], args=args))
        return bool(ok), float(tokens)

    def acquire(self, counts: Mapping[str, int]) -> None:
        """Take ``counts[tenant]`` events from each bucket, or raise 429 (413 if it can never fit, 503
        without Redis)."""
        for n in counts.values():
            if n > self.burst:
                raise batch_too_large(n, self.burst)
        taken: dict[str, int] = {}
        try:
            for tenant, n in counts.items():
                ok, tokens = self._bucket(tenant, n, take=True)
                if not ok:
                    self.refund(taken)
                    raise rate_limited(self.rate, n - tokens)
                taken[tenant] = n
        except SharedStateUnavailable as exc:
            self.refund(taken)
            raise exc.api_error() from None

    def refund(self, counts: Mapping[str, int]) -> None:
        """Give back tokens for a batch refused after ``acquire`` (best effort without Redis)."""
        try:
            for tenant, n in counts.items():
                self._bucket(tenant, n, take=False)
        except SharedStateUnavailable:
            pass  # the tokens come back with time anyway

    def forget(self, tenant: str) -> None:
        """Nothing to do here: the erasure of the shared state deletes the bucket with the tenant's keys."""
