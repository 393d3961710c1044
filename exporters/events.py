"""What tenants send: app events and business figures, and the error that refuses them.

The HTTP layer checks shapes and types; the collector checks what only it knows (series caps,
allowlists) and applies a batch whole or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class AppEvent:
    """One application event. ``user_id`` is pseudonymised on arrival and never stored in clear."""

    tenant_id: str
    user_id: str | None
    event_type: str
    metadata: dict[str, Any] = field(default_factory=dict)


class Event(Protocol):
    """What the collector reads of an event: ``AppEvent``, or the HTTP layer's validated model as it is
    (copying 500 validated events into ``AppEvent`` cost a quarter of parsing a batch)."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def event_type(self) -> str: ...
    @property
    def metadata(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class BusinessFigures:
    """Business figures reported by a tenant: revenue is added, the others replace the last value."""

    tenant_id: str
    revenue: float | None = None
    active_users: float | None = None
    conversion_rate: float | None = None


class IngestError(Exception):
    """Refused input: which field, why, and the HTTP status it maps to (422 bad value, 429 limit)."""

    def __init__(self, field: str, reason: str, status: int = 422) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.status = status

    def to_json(self) -> dict[str, str]:
        return {
            "error": "invalid_input" if self.status == 422 else "limit_exceeded",
            "field": self.field,
            "reason": self.reason,
        }
