"""Durable ingest through Redis Streams: a batch is answered 2xx only once its counts are in a stream.

``IngestStream.append`` adds an accepted batch's counts (``redis_counters.delta``) to
``redis_keys.stream()``, with an optional idempotency key: a batch sent again with the same key (a
client that lost the answer) is not added twice. Every replica reads the stream and the direct
producers' inbox in one consumer group (``StreamSource``), so each entry goes to one replica; an entry
left pending by a replica that died is claimed by another after ``CLAIM_IDLE_MS``.

Another source (Kafka, say) plugs in as a ``StreamSource``: it yields ``Entry`` values, and the
counters' script must then record the source's position (topic, partition -> offset) instead of
``XACK``, skipping positions already applied, with the offset committed to the broker afterwards;
docs/exporter.md says more. No Kafka client is shipped: none could be tested here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from redis.exceptions import ResponseError

from tenantpulse.exporters import redis_keys
from tenantpulse.exporters.redis_client import RedisConnection

GROUP = "tenantpulse"  # the consumer group every replica joins
CLAIM_IDLE_MS = 5_000  # an entry pending this long is taken over (its replica died or stalled)
LIVE_CONSUMER_MS = 30_000  # a consumer that read within this is a live replica (it reads every 0.2 s)
IDEMPOTENCY_SECONDS = 86_400  # how long a batch's idempotency key is remembered
DEAD_LETTERS_MAX = 10_000  # approximate length the dead-letter stream is trimmed to
ADDED, REPLAYED, CONFLICT = 1, 2, 0

# KEYS: stream[, idempotency key]. ARGV: counts (JSON), body digest, key TTL. Returns {status, id}.
APPEND = """
if #KEYS > 1 then
  local held = redis.call('HMGET', KEYS[2], 'id', 'digest')
  if held[1] then
    if held[2] ~= ARGV[2] then return {0, held[1]} end
    return {2, held[1]}
  end
end
local id = redis.call('XADD', KEYS[1], '*', 'd', ARGV[1])
if #KEYS > 1 then
  redis.call('HSET', KEYS[2], 'id', id, 'digest', ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return {1, id}
"""

# KEYS: the entry's stream, the dead-letter stream. ARGV: group, id, max length, then field/value pairs.
DEAD = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
return 1
"""


@dataclass(frozen=True)
class Entry:
    """One entry of a source: where it is (stream key and id) and its fields."""

    stream: str
    id: str
    fields: dict[str, str]


class StreamSource(Protocol):
    """Where a replica's consumer reads entries from; each entry goes to one replica of the group."""

    def read(self, count: int, block_ms: int | None) -> list[Entry]:
        """New entries for this consumer, waiting up to ``block_ms`` for some (None: not at all)."""
        ...

    def claim(self, count: int) -> list[Entry]:
        """Entries another consumer left pending for longer than the claim idle time, now this one's."""
        ...


class IngestStream:
    """The producer side used by the HTTP ingest."""

    def __init__(self, redis: RedisConnection) -> None:
        self.redis = redis

    def append(self, counts: str, idempotency: tuple[str, str] | None, digest: str) -> tuple[int, str]:
        """(ADDED | REPLAYED | CONFLICT, entry id). ``idempotency``: (key id, client's key).
        Raises ``SharedStateUnavailable``."""
        keys = [redis_keys.stream()]
        if idempotency is not None:
            keys.append(redis_keys.idempotency(*idempotency))
        script = self.redis.script(APPEND)
        status, entry_id = self.redis.run(
            lambda _: script(keys=keys, args=[counts, digest, IDEMPOTENCY_SECONDS])
        )
        return int(status), entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


class RedisStreams:
    """A ``StreamSource`` over the ingest stream and the inbox, in consumer group ``GROUP``."""

    def __init__(
        self,
        redis: RedisConnection,
        consumer: str,
        keys: tuple[str, ...] | None = None,
        claim_idle_ms: int = CLAIM_IDLE_MS,
    ) -> None:
        self.redis = redis
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self.keys = keys or (redis_keys.stream(), redis_keys.inbox())
        self._claim_from = dict.fromkeys(self.keys, "0-0")

    def ensure_group(self) -> None:
        """Create the group on each stream (and the stream) unless it exists; from the first entry, so
        entries added before any replica started are read too."""

        def create(r: Any) -> None:
            for key in self.keys:
                try:
                    r.xgroup_create(key, GROUP, id="0", mkstream=True)
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise

        self.redis.run(create)

    def read(self, count: int, block_ms: int | None) -> list[Entry]:
        try:
            replies: Any = self.redis.run(
                lambda r: r.xreadgroup(
                    GROUP, self.consumer, dict.fromkeys(self.keys, ">"), count=count, block=block_ms
                )
            )
        except ResponseError as exc:  # NOGROUP: Redis restarted without its data
            if "NOGROUP" not in str(exc):
                raise
            self.ensure_group()
            return []
        return [_entry(key, eid, fields) for key, items in replies or () for eid, fields in items]

    def claim(self, count: int) -> list[Entry]:
        out: list[Entry] = []
        for key in self.keys:

            def autoclaim(r: Any, key: str = key) -> Any:
                return r.xautoclaim(
                    key, GROUP, self.consumer, self.claim_idle_ms, self._claim_from[key], count=count
                )

            try:
                start, items, *_ = self.redis.run(autoclaim)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self.ensure_group()
                continue
            self._claim_from[key] = start.decode() if isinstance(start, bytes) else str(start)
            out.extend(_entry(key, eid, fields) for eid, fields in items if fields is not None)
        return out

    def dead_letter(self, entry: Entry, fields: Mapping[str, str]) -> bool:
        """Acknowledge the entry and record it, with why, in the dead-letter stream (atomically)."""
        keys = [entry.stream, redis_keys.dead_letters()]
        args: list[Any] = [GROUP, entry.id, DEAD_LETTERS_MAX]
        args += [x for kv in {"source": entry.stream, "entry": entry.id, **fields}.items() for x in kv]
        script = self.redis.script(DEAD)
        return bool(self.redis.run(lambda _: script(keys=keys, args=args)))


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _entry(key: Any, entry_id: Any, fields: Mapping[Any, Any]) -> Entry:
    return Entry(_text(key), _text(entry_id), {_text(k): _text(v) for k, v in fields.items()})
