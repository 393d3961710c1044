"""The tenant state every exporter replica shares, in Redis: unique users, caps, last-value gauges.

Unique users are Redis HyperLogLogs, one per tenant, key version and sub-window (``redis_keys``):
each batch PFADDs its pseudonyms to the current 5-minute key (for the 1h window) and the current
hour's key (1d), each with an EXPIREAT for when its window has slid past it; a read PFCOUNTs the
window's keys, which merges them on the fly. Why not the in-memory DataSketches, serialised and
merged: every replica would read, merge and write back whole sketches under optimistic locking,
and a scrape would fetch 36 sketches per tenant; Redis's own HLL is updated and merged inside
Redis, atomically, and its 16384 six-bit registers give a 0.81 % standard error (DataSketches
lg_k 12 here: 1.6 %), at 12 KB per dense key.

A batch's share of one tenant is one Lua script (atomic, EVALSHA): it checks the tenant's erasure
generation, reserves the new event types (SET, SCARD against the cap) and series (ledger HASH
against the cap) or refuses naming the first one past a cap, then adds users and gauges. A batch
naming several tenants is checked for all of them first, then recorded tenant by tenant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from tenantpulse.exporters import redis_keys
from tenantpulse.exporters.events import IngestError
from tenantpulse.exporters.redis_client import RedisConnection
from tenantpulse.exporters.redis_counters import RedisCounters
from tenantpulse.exporters.redis_stream import IngestStream
from tenantpulse.exporters.shared_state import Stale, TenantReading, TenantWork
from tenantpulse.exporters.sketches import WINDOWS, reading_version

GAUGES = ("active_users", "conversion_rate")  # business figures whose last value every replica shows
EXPIRY_GRACE = 60  # seconds a sub-window's key outlives its window: room for replicas' clock skew
CHUNK = 1000  # arguments unpacked per Redis call inside Lua (its stack holds ~8000)
OK, STALE, TYPE_CAP, SERIES_CAP = 0, 1, 2, 3

# KEYS: generation, types, series, gauges, then one HLL per (key version, window).
# ARGV: known generation (-1: adopt), commit 1 / check 0, max types, max series, W windows, W expiry
# times; then n + types; n + (item, weight) pairs; n + (gauge, value) pairs; per key version n + users.
# Returns {status, generation, series total or the 1-based index of the type / item past its cap}.
RECORD = f"""
local gen = tonumber(redis.call('GET', KEYS[1]) or '0')
local known = tonumber(ARGV[1])
if known >= 0 and gen > known then return {{{STALE}, gen, 0}} end
local max_types, max_series, w = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local function chunks(list, first, last, fn)
  for a = first, last, {CHUNK} do fn(unpack(list, a, math.min(a + {CHUNK} - 1, last))) end
end
local i = 6 + w
local n = tonumber(ARGV[i])
local held = redis.call('SCARD', KEYS[2])
local fresh = {{}}
for j = 1, n do
  if redis.call('SISMEMBER', KEYS[2], ARGV[i + j]) == 0 then
    held = held + 1
    if held > max_types then return {{{TYPE_CAP}, gen, j}} end
    fresh[#fresh + 1] = ARGV[i + j]
  end
end
i = i + n + 1
n = tonumber(ARGV[i])
local total = tonumber(redis.call('HGET', KEYS[3], '#') or '0')
local items = {{}}
for j = 1, n do
  local item = ARGV[i + 2 * j - 1]
  if redis.call('HEXISTS', KEYS[3], item) == 0 then
    total = total + tonumber(ARGV[i + 2 * j])
    if total > max_series then return {{{SERIES_CAP}, gen, j}} end
    items[#items + 1] = item
    items[#items + 1] = ARGV[i + 2 * j]
  end
end
if ARGV[2] ~= '1' then return {{{OK}, gen, total}} end
i = i + 2 * n + 1
chunks(fresh, 1, #fresh, function(...) redis.call('SADD', KEYS[2], ...) end)
if #items > 0 then
  chunks(items, 1, #items, function(...) redis.call('HSET', KEYS[3], ...) end)
  redis.call('HSET', KEYS[3], '#', total)
end
n = tonumber(ARGV[i])
if n > 0 then redis.call('HSET', KEYS[4], unpack(ARGV, i + 1, i + 2 * n)) end
i = i + 2 * n + 1
for k = 5, #KEYS, w do
  n = tonumber(ARGV[i])
  for x = 0, w - 1 do
    chunks(ARGV, i + 1, i + n, function(...) redis.call('PFADD', KEYS[k + x], ...) end)
    redis.call('EXPIREAT', KEYS[k + x], ARGV[6 + x])
  end
  i = i + n + 1
end
return {{{OK}, gen, total}}
"""


class RedisTenantState:
    """Per-tenant shared state for ``MetricsCollector`` (``shared=``)."""

    def __init__(self, redis: RedisConnection, max_event_types: int, max_series: int) -> None:
        self.redis = redis
        self.max_event_types = max_event_types
        self.max_series = max_series
        self.counters = RedisCounters(redis)  # events, durations, revenue: applied from the stream
        self.stream = IngestStream(redis)

    @property
    def up(self) -> bool:
        return self.redis.up

    def record(self, works: Sequence[TenantWork], now: float) -> dict[str, tuple[int, int]]:
        """Reserve and record every tenant's work; tenant -> (generation, shared series total).

        Raises ``IngestError`` (a cap, nothing recorded), ``Stale`` or ``SharedStateUnavailable``."""
        works = [w for w in works if not w.empty()]
        if len(works) > 1:  # all caps first: a refusal must leave no trace in any tenant's state
            for work in works:
                self._call(work, now, commit=False)
        return {work.tenant: self._call(work, now, commit=True) for work in works}

    def _call(self, work: TenantWork, now: float, commit: bool) -> tuple[int, int]:
        t = work.tenant
        keys = [redis_keys.generation(t), redis_keys.types(t), redis_keys.series(t), redis_keys.gauges(t)]
        args: list[Any] = [work.generation, int(commit), self.max_event_types, self.max_series, len(WINDOWS)]
        slots = [int(now // w.slot_seconds) for w in WINDOWS]
        args += [(s + w.slots) * w.slot_seconds + EXPIRY_GRACE for s, w in zip(slots, WINDOWS, strict=True)]
        args += [len(work.types), *(name for name, _ in work.types)]
        args += [len(work.series), *(x for item, weight, _ in work.series for x in (item, weight))]
        args += [len(work.gauges), *(x for kv in work.gauges.items() for x in kv)]
        for key_id, pseudonyms in work.users.items() if commit else ():
            keys += [redis_keys.users(t, key_id, w.label, s) for s, w in zip(slots, WINDOWS, strict=True)]
            args += [len(pseudonyms), *pseudonyms]
        script = self.redis.script(RECORD)
        status, generation, detail = self.redis.run(lambda _: script(keys=keys, args=args))
        if status == STALE:
            raise Stale(t, int(generation))
        if status == TYPE_CAP:
            raise IngestError(work.types[detail - 1][1], f"event type limit reached ({self.max_event_types})")
        if status == SERIES_CAP:
            raise IngestError(work.series[detail - 1][2], f"series limit reached ({self.max_series})")
        return int(generation), int(detail)

    def read(
        self, tenants: Sequence[str], spans: list[tuple[str, float]], now: float
    ) -> dict[str, TenantReading]:
        """Per tenant, in one round trip: generation, series total, gauges, unique users per window
        (read from the newest key version that has seen the whole window, as in memory)."""
        chosen = [(w, reading_version(spans, w, now)) for w in WINDOWS]
        windows = [(w, key_id) for w, key_id in chosen if key_id is not None]

        def pipeline(r: Any) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            for t in tenants:
                pipe.get(redis_keys.generation(t))
                pipe.hget(redis_keys.series(t), "#")
                pipe.hmget(redis_keys.gauges(t), list(GAUGES))
                for w, key_id in windows:
                    current = int(now // w.slot_seconds)
                    keys = (
                        redis_keys.users(t, key_id, w.label, s)
                        for s in range(current - w.slots + 1, current + 1)
                    )
                    pipe.execute_command("PFCOUNT", *keys)  # a cluster pipeline refuses pipe.pfcount
            return list(pipe.execute())

        if not tenants:  # still ask, so that redis_up tells the truth
            self.redis.run(lambda r: r.ping())
            return {}
        replies = self.redis.run(pipeline)
        per = 3 + len(windows)
        out: dict[str, TenantReading] = {}
        for n, t in enumerate(tenants):
            gen, series, gauges, *unique = replies[n * per : (n + 1) * per]
            out[t] = TenantReading(
                generation=int(gen or 0),
                series=int(series or 0),
                gauges={g: float(v) for g, v in zip(GAUGES, gauges, strict=True) if v is not None},
                unique={w.label: float(u) for (w, _), u in zip(windows, unique, strict=True)},
            )
        return out

    def erase(self, tenant: str) -> dict[str, Any]:
        """Delete every key of the tenant and its counters, after raising its generation (so replicas
        drop their copy and a batch planned before the erasure is planned again); stream entries of the
        tenant accepted before are skipped when applied. Raises ``SharedStateUnavailable``."""

        def erase(r: Any) -> dict[str, int]:
            generation = int(r.incr(redis_keys.generation(tenant)))
            keys = list(r.scan_iter(match=redis_keys.tenant_keys(tenant), count=1000))
            deleted = sum(int(r.delete(*keys[i : i + CHUNK])) for i in range(0, len(keys), CHUNK))
            return {"keys": deleted, "generation": generation}

        erased: dict[str, Any] = self.redis.run(erase)
        erased["keys"] += self.counters.erase(tenant)
        erased["replicas"] = self.replicas()
        return erased

    def replicas(self) -> list[str]:
        """The consumers (one per replica process) that read the ingest stream lately: the replicas that
        drop an erased tenant's copy at their next read or ingest of it."""
        from tenantpulse.exporters.redis_stream import GROUP, LIVE_CONSUMER_MS

        def consumers(r: Any) -> list[Any]:
            try:
                return list(r.xinfo_consumers(redis_keys.stream(), GROUP))
            except ResponseError:  # no stream or group yet: no consumer has run
                return []

        found = self.redis.run(consumers)
        names = (c["name"] for c in found if int(c["idle"]) < LIVE_CONSUMER_MS)
        return sorted(n.decode() if isinstance(n, bytes) else str(n) for n in names)
