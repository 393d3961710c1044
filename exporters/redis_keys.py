"""The Redis key layout: every key of a tenant carries the hash tag ``{tenant}``, so on Redis Cluster
all of them live in one slot and one Lua script may touch them together.

``tp:{t}:rl`` token bucket · ``tp:{t}:types`` event types (SET) · ``tp:{t}:series`` series ledger
(HASH item -> weight, ``#`` the total) · ``tp:{t}:gauges`` last-value figures (HASH) ·
``tp:{t}:u:<key id>:<window>:<slot>`` unique users of one sub-window (HyperLogLog, expiring) ·
``tp:gen:{t}`` the tenant's erasure generation, outside ``tp:{t}:*`` so an erasure keeps it.

The durable ingest path (``redis_stream``, ``redis_counters``) keeps its keys in one slot, hash tag
``{tp:ingest}``, so that applying an entry to the counters and acknowledging it is one Lua script:
``tp:{tp:ingest}:stream`` accepted batches · ``:inbox`` direct producers' entries · ``:dead`` refused
ones · ``:c:<t>`` a tenant's counters (HASH) · ``:tenants`` tenants with counters (SET) ·
``:erased:<t>`` the stream id an erasure reached · ``:idem:<key id>:<key>`` idempotency keys ·
``:exposer`` the lease of the replica that exposes the counters.
"""

from __future__ import annotations

PREFIX = "tp"


def tenant_keys(tenant: str) -> str:
    """The SCAN pattern of all the tenant's data keys (tenant ids hold no glob characters)."""
    return f"{PREFIX}:{{{tenant}}}:*"


def bucket(tenant: str) -> str:
    return f"{PREFIX}:{{{tenant}}}:rl"


def types(tenant: str) -> str:
    return f"{PREFIX}:{{{tenant}}}:types"


def series(tenant: str) -> str:
    return f"{PREFIX}:{{{tenant}}}:series"


def gauges(tenant: str) -> str:
    return f"{PREFIX}:{{{tenant}}}:gauges"


def users(tenant: str, key_id: str, window: str, slot: int) -> str:
    return f"{PREFIX}:{{{tenant}}}:u:{key_id}:{window}:{slot}"


def generation(tenant: str) -> str:
    return f"{PREFIX}:gen:{{{tenant}}}"


INGEST = f"{PREFIX}:{{{PREFIX}:ingest}}"


def stream() -> str:
    return f"{INGEST}:stream"


def inbox() -> str:
    return f"{INGEST}:inbox"


def dead_letters() -> str:
    return f"{INGEST}:dead"


def counters(tenant: str) -> str:
    return f"{INGEST}:c:{tenant}"


def counted_tenants() -> str:
    return f"{INGEST}:tenants"


def erased(tenant: str) -> str:
    return f"{INGEST}:erased:{tenant}"


def idempotency(key_id: str, key: str) -> str:
    return f"{INGEST}:idem:{key_id}:{key}"


def exposer() -> str:
    return f"{INGEST}:exposer"
