"""Each replica's consumer: applies the ingest stream to the shared counters, validates the direct
producers' inbox, and holds (or waits for) the lease of the one replica that exposes the counters.

Why one exposer: every replica can read the shared counters, but if each exposed them, Prometheus's
``sum by (tenant)`` over the replicas would count every event N times. The lease (``redis_keys.exposer``,
``LEASE_MS``, renewed every ``RENEW_SECONDS``) passes to another replica when its holder dies; its
series then come from another ``instance``, which ``sum`` and ``rate`` take as they are.

An inbox entry holds ``body`` (the JSON of ``POST /analytics/metrics``: one event, one business object
or a batch) or the fields of one event (``tenant_id``, ``event_type``, ``user_id``, ``metadata`` as
JSON). It gets the HTTP path's validation; a refused one goes to the dead-letter stream with ``field``
and ``reason``, acknowledged in the same script, never dropped silently.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import structlog

from tenantpulse.exporters import ingest_parsing, redis_keys
from tenantpulse.exporters.events import IngestError
from tenantpulse.exporters.redis_counters import RedisCounters
from tenantpulse.exporters.redis_stream import GROUP, Entry, RedisStreams
from tenantpulse.exporters.shared_state import SharedStateUnavailable
from tenantpulse.web.errors import ApiError

if TYPE_CHECKING:
    from tenantpulse.exporters.collector import MetricsCollector

LEASE_MS = 10_000
RENEW_SECONDS = 2.0
READ_COUNT = 200
BLOCK_MS = 200  # below the client's 1 s socket timeout
BACKOFF_SECONDS = 0.5  # after Redis failed
EVENT_FIELDS = ("tenant_id", "event_type", "user_id")

# KEYS: lease. ARGV: holder, TTL ms. 1 if the caller holds it now.
TAKE = """
local holder = redis.call('GET', KEYS[1])
if holder == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

log = structlog.get_logger("tenantpulse.exporter.stream")


def consumer_name() -> str:
    """Unique per process start: a restarted replica is a new consumer; its old entries are claimed."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class StreamWorker:
    """The consumer thread of one replica (``start``/``stop``); ``exposing()`` tells the renderer."""

    def __init__(
        self, collector: MetricsCollector, max_batch_events: int, consumer: str | None = None
    ) -> None:
        assert collector.shared is not None
        self.collector = collector
        self.redis = collector.shared.redis
        self.counters: RedisCounters = collector.shared.counters
        self.max_batch_events = max_batch_events
        self.consumer = consumer or consumer_name()
        self.source = RedisStreams(self.redis, self.consumer)
        self._lease_until = 0.0  # monotonic time up to which this replica surely holds the lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tenantpulse-stream", daemon=True)
        self._grouped = False
        self._renewed = -RENEW_SECONDS  # monotonic time of the last lease renewal

    def exposing(self) -> bool:
        return time.monotonic() < self._lease_until

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        if self.exposing():  # hand over at once rather than after the lease runs out
            try:
                script = self.redis.script(RELEASE)
                self.redis.run(lambda _: script(keys=[redis_keys.exposer()], args=[self.consumer]))
            except SharedStateUnavailable:
                pass
        self._lease_until = 0.0

    def step(self, block_ms: int | None = BLOCK_MS) -> int:
        """One round: the lease and stale entries every ``RENEW_SECONDS``, then what is new (waiting
        up to ``block_ms``; None: not at all); returns the entries handled. Raises
        ``SharedStateUnavailable``."""
        if not self._grouped:
            self.source.ensure_group()
            self._grouped = True
        handled = 0
        if time.monotonic() - self._renewed >= RENEW_SECONDS:
            self._renew()
            self._renewed = time.monotonic()
            handled += self.drain(self.source.claim(READ_COUNT))
        return handled + self.drain(self.source.read(READ_COUNT, block_ms))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except SharedStateUnavailable:
                self._stop.wait(BACKOFF_SECONDS)
            except Exception:  # noqa: BLE001 - a bug must not end the consumer; the entry stays pending
                log.exception("stream consumer failed")
                self._stop.wait(BACKOFF_SECONDS)

    def _renew(self) -> None:
        asked = time.monotonic()
        script = self.redis.script(TAKE)
        held = self.redis.run(lambda _: script(keys=[redis_keys.exposer()], args=[self.consumer, LEASE_MS]))
        # Counted from before the call: the lease may have been set as late as the reply, never earlier.
        self._lease_until = asked + LEASE_MS / 1000 - RENEW_SECONDS if held else 0.0

    def drain(self, entries: list[Entry]) -> int:
        for entry in entries:
            if entry.stream == redis_keys.stream():
                self._apply_counts(entry)
            else:
                self._apply_inbox(entry)
        return len(entries)

    def _apply_counts(self, entry: Entry) -> None:
        try:
            change = json.loads(entry.fields["d"])
            assert isinstance(change, dict)
        except (KeyError, ValueError, AssertionError):
            self.source.dead_letter(entry, {"field": "d", "reason": "not a batch of counts"})
            return
        self.counters.apply(entry.stream, GROUP, entry.id, change, check_erased=True)

    def _apply_inbox(self, entry: Entry) -> None:
        """Validate as the HTTP ingest does, record the batch's users and caps, then count it and
        acknowledge the entry in one script; any refusal goes to the dead letters."""
        try:
            body = _inbox_body(entry.fields)
            batch = ingest_parsing.parse(body, "application/json", self.max_batch_events)
        except IngestError as exc:
            self._refuse(entry, exc.field, exc.reason, None)
            return
        except ApiError as exc:
            self._refuse(entry, exc.body.field or "body", exc.body.reason, None)
            return
        tenant = next(batch.tenants(), None)
        try:
            self.collector.ingest(
                batch.events,
                batch.business,
                commit=lambda change: self.counters.apply(
                    entry.stream, GROUP, entry.id, change, check_erased=False
                ),
            )
        except IngestError as exc:
            self._refuse(entry, batch.where(exc.field), exc.reason, tenant)

    def _refuse(self, entry: Entry, field: str, reason: str, tenant: str | None) -> None:
        log.info("inbox entry refused", entry=entry.id, field=field, reason=reason)
        fields = {"field": field, "reason": reason}
        if tenant is not None:
            fields["tenant"] = tenant
        self.source.dead_letter(entry, fields)


def _inbox_body(fields: dict[str, str]) -> bytes:
    """The entry as an ingest body: its ``body`` field, or one event from its fields."""
    if "body" in fields:
        return fields["body"].encode()
    event: dict[str, Any] = {k: fields[k] for k in EVENT_FIELDS if k in fields}
    if "metadata" in fields:
        try:
            event["metadata"] = json.loads(fields["metadata"])
        except ValueError:
            raise IngestError("metadata", "must be a JSON object") from None
    if not event:
        raise IngestError("body", "an entry needs a body field or the fields of one event")
    return json.dumps(event).encode()
