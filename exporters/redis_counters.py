"""The counters every replica shares in Redis (events, event durations, revenue): what a batch adds,
how an entry of the ingest stream is applied exactly once, and how the counters are read back.

A tenant's counters are one HASH (``redis_keys.counters``): ``e:<event type>`` events, ``h:<event
type>:<i>`` the duration histogram's i-th bucket (not cumulative, the last is +Inf), ``s:<event type>``
the durations' sum, ``r`` revenue. Applying an entry is one Lua script with the entry's acknowledgement:
``XACK`` answers 1 only for the first replica to acknowledge it, and only then are the counters
incremented, so an entry claimed by a second replica after the first one died (or stalled) is counted
once whichever finishes. Entries are deleted once applied: the stream holds only what waits.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tenantpulse.conventions import catalog as c
from tenantpulse.exporters import redis_keys
from tenantpulse.exporters.exposition import HistogramTable, SeriesTable, Table
from tenantpulse.exporters.redis_client import RedisConnection

Delta = dict[str, dict[str, float]]  # tenant -> counter field -> amount
COUNTER_FAMILIES = (c.EVENTS.name, c.EVENT_DURATION.name, c.REVENUE.name)

# KEYS: the entry's stream, the counted-tenants SET, then per tenant its counters HASH and erasure mark.
# ARGV: group, entry id, check erasures (1/0), then per tenant: name, n, n (field, integer) pairs,
# m, m (field, float) pairs. Returns 1 if applied, 0 if another replica had acknowledged it already.
APPLY = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
local function id(s)
  local ms, seq = string.match(s, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local ems, eseq = id(ARGV[2])
local i = 4
for k = 3, #KEYS, 2 do
  local tenant = ARGV[i]
  local mark = ARGV[3] == '1' and redis.call('GET', KEYS[k + 1])
  local skip = false
  if mark then
    local mms, mseq = id(mark)
    skip = ems < mms or (ems == mms and eseq <= mseq)
  end
  local n = tonumber(ARGV[i + 1])
  local m = tonumber(ARGV[i + 2 + 2 * n])
  if not skip then
    for j = 0, n - 1 do redis.call('HINCRBY', KEYS[k], ARGV[i + 2 + 2 * j], ARGV[i + 3 + 2 * j]) end
    local f = i + 3 + 2 * n
    for j = 0, m - 1 do redis.call('HINCRBYFLOAT', KEYS[k], ARGV[f + 2 * j], ARGV[f + 1 + 2 * j]) end
    redis.call('SADD', KEYS[2], tenant)
  end
  i = i + 3 + 2 * n + 2 * m
end
return 1
"""

# KEYS: stream, the tenant's counters, counted-tenants SET, erasure mark. ARGV: tenant, mark TTL.
# Entries of the stream up to its last id when the erasure ran are skipped when they are applied.
ERASE = """
local last = '0-0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for j = 1, #info, 2 do if info[j] == 'last-generated-id' then last = info[j + 1] end end
end
redis.call('SET', KEYS[4], last, 'EX', ARGV[2])
redis.call('SREM', KEYS[3], ARGV[1])
return redis.call('DEL', KEYS[2])
"""
ERASE_MARK_SECONDS = 7 * 86400  # longer than any entry waits in the stream


def delta(
    counts: Mapping[tuple[str, str], int],
    durations: Mapping[tuple[str, str], Sequence[float]],
    revenue: Iterable[tuple[str, float]],
) -> Delta:
    """What a planned batch adds to the counters, per tenant."""
    out: Delta = {}
    bounds = c.EVENT_DURATION.buckets
    for (t, et), n in counts.items():
        out.setdefault(t, {})[f"e:{et}"] = n
    for (t, et), values in durations.items():
        fields = out.setdefault(t, {})
        for v in values:
            name = f"h:{et}:{bisect_left(bounds, v)}"
            fields[name] = fields.get(name, 0) + 1
        fields[f"s:{et}"] = math.fsum(values)
    for t, amount in revenue:
        fields = out.setdefault(t, {})
        fields["r"] = fields.get("r", 0.0) + amount
    return out


def is_float_field(name: str) -> bool:
    return name == "r" or name.startswith("s:")


class RedisCounters:
    """The shared counters: applied from the stream, read for exposition and the JSON reads."""

    def __init__(self, redis: RedisConnection) -> None:
        self.redis = redis

    def apply(self, stream: str, group: str, entry_id: str, change: Delta, check_erased: bool) -> bool:
        """Acknowledge the entry and add its counts, atomically; False if it was acknowledged before.
        Raises ``SharedStateUnavailable``."""
        keys = [stream, redis_keys.counted_tenants()]
        args: list[Any] = [group, entry_id, int(check_erased)]
        for tenant, fields in change.items():
            keys += [redis_keys.counters(tenant), redis_keys.erased(tenant)]
            ints = [(f, int(v)) for f, v in fields.items() if not is_float_field(f)]
            floats = [(f, repr(float(v))) for f, v in fields.items() if is_float_field(f)]
            args += [tenant, len(ints), *(x for pair in ints for x in pair)]
            args += [len(floats), *(x for pair in floats for x in pair)]
        script = self.redis.script(APPLY)
        return bool(self.redis.run(lambda _: script(keys=keys, args=args)))

    def tenants(self) -> set[str]:
        members: Any = self.redis.run(lambda r: r.smembers(redis_keys.counted_tenants()))
        return {t.decode() for t in members}

    def read(self, tenants: Sequence[str]) -> dict[str, dict[str, float]]:
        """Tenant -> its counter fields, in one round trip (tenants without counters are left out)."""

        def pipeline(r: Any) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            for t in tenants:
                pipe.hgetall(redis_keys.counters(t))
            return list(pipe.execute())

        if not tenants:
            return {}
        replies = self.redis.run(pipeline)
        return {
            t: {k.decode(): float(v) for k, v in fields.items()}
            for t, fields in zip(tenants, replies, strict=True)
            if fields
        }

    def erase(self, tenant: str) -> int:
        """Delete the tenant's counters; entries of the stream accepted before are skipped when applied."""
        keys = [
            redis_keys.stream(),
            redis_keys.counters(tenant),
            redis_keys.counted_tenants(),
            redis_keys.erased(tenant),
        ]
        script = self.redis.script(ERASE)
        return int(self.redis.run(lambda _: script(keys=keys, args=[tenant, ERASE_MARK_SECONDS])))


def tables(tenant: str, fields: Mapping[str, float]) -> dict[str, Table]:
    """The tenant's counter families as exposition tables, built from its HASH."""
    fixed = {c.TENANT: tenant}
    events = SeriesTable(c.EVENTS, fixed)
    durations = HistogramTable(c.EVENT_DURATION, fixed)
    revenue = SeriesTable(c.REVENUE, fixed)
    for name in sorted(fields):
        value = fields[name]
        kind, _, rest = name.partition(":")
        if kind == "e":
            events.set(rest, value)
        elif kind == "h":
            et, _, bucket = rest.rpartition(":")
            durations.counts[durations.slot(et)][int(bucket)] = int(value)
        elif kind == "s":
            durations.sums[durations.slot(rest)] = value
        elif kind == "r":
            revenue.set((), value)
    out: dict[str, Table] = {}
    for table in (events, durations, revenue):
        if table.index:
            out[table.metric.name] = table
    return out
