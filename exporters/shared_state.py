"""What the collector hands to the state its replicas share (``redis_state``), and how that state fails.

In the embedded default there is none: one process keeps everything in memory. With ``--redis-url``
every replica keeps its counters in memory (Prometheus sums them over the replicas it scrapes) and
shares, per tenant, what a sum would get wrong: unique users, last-value gauges, the event-type and
series caps (and, in ``redis_limits``, the rate limit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tenantpulse.web.errors import ApiError

RETRY_AFTER_SECONDS = 1  # Redis reconnects within a second or two once it is back


class SharedStateUnavailable(Exception):
    """Redis could not be reached (or refused to write): nothing of the request was applied."""

    def api_error(self) -> ApiError:
        return ApiError(
            503,
            "unavailable",
            "the exporter's shared state (Redis) is unreachable; nothing was stored, retry later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


class Stale(Exception):
    """The tenant was erased since this replica last looked: drop its local state and plan again."""

    def __init__(self, tenant: str, generation: int) -> None:
        super().__init__(tenant)
        self.tenant = tenant
        self.generation = generation


@dataclass
class TenantWork:
    """One tenant's share of a batch, for one atomic call: what must be reserved and recorded.

    ``types`` and ``series`` are what the batch adds that this replica does not hold yet, in batch
    order, each with the field a refusal names; the shared ledger counts only those no replica holds.
    """

    tenant: str
    generation: int  # the tenant's erasure generation this replica knows (-1: none yet, adopt it)
    types: list[tuple[str, str]] = field(default_factory=list)  # (event type, field)
    series: list[tuple[str, int, str]] = field(default_factory=list)  # (series item, weight, field)
    users: dict[str, list[bytes]] = field(default_factory=dict)  # key id -> pseudonyms (8 bytes)
    gauges: dict[str, float] = field(default_factory=dict)  # last-value business figures

    def empty(self) -> bool:
        return not (self.types or self.series or self.users or self.gauges)


@dataclass
class TenantReading:
    """What a scrape reads of one tenant: its generation, shared series count, gauges, unique users."""

    generation: int
    series: int
    gauges: dict[str, float]
    unique: dict[str, float]  # window label -> estimate
