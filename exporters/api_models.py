"""Request and response bodies of the HTTP API, as pydantic models.

They check shape, types and label-value syntax (``extra="forbid"``, strict types) so the collector only
ever sees well-formed events (``EventIn`` is one, see ``events.Event``) and ``BusinessFigures``; the collector keeps the checks only it can make
(series caps, metadata allowlists). The same models produce the OpenAPI document. Error answers are
``tenantpulse.web.errors.ErrorBody``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from tenantpulse.conventions.catalog import EVENT_TYPE_RE, TENANT_ID_PATTERN
from tenantpulse.exporters.collector import MAX_ACTIVE_USERS, MAX_REVENUE
from tenantpulse.exporters.events import BusinessFigures

# Event types become label values; the collector's rule is the one rule (short, nothing to escape).
EVENT_TYPE_PATTERN = EVENT_TYPE_RE.pattern
MAX_METADATA_ITEMS = 32

TenantId = Annotated[str, StringConstraints(pattern=TENANT_ID_PATTERN)]
EventType = Annotated[str, StringConstraints(pattern=EVENT_TYPE_PATTERN)]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
MetadataKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
MAX_METADATA_STRING = 256


def _scalar(value: Any) -> Any:
    """One check with one clear message (a union type would report one error per member)."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value
    if isinstance(value, str):
        if len(value) > MAX_METADATA_STRING:
            raise ValueError(f"strings are at most {MAX_METADATA_STRING} characters")
        return value
    raise ValueError("must be a string, number, boolean or null")


MetadataValue = Annotated[
    Any,
    AfterValidator(_scalar),
    WithJsonSchema({"type": ["string", "number", "boolean", "null"], "maxLength": MAX_METADATA_STRING}),
]

_STRICT = ConfigDict(extra="forbid", strict=True)
BUSINESS_FIGURES = ("revenue", "active_users", "conversion_rate")


class EventIn(BaseModel):
    """One application event, as in ``collect_app_metrics(tenant_id, user_id, event_type, metadata)``."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "t1",
                    "user_id": "u-42",
                    "event_type": "song_play",
                    "metadata": {"duration_ms": 180},
                }
            ]
        },
    )

    tenant_id: TenantId
    user_id: UserId | None = Field(
        None, description="Pseudonymised with a keyed hash on arrival; never stored."
    )
    event_type: EventType
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict,
        max_length=MAX_METADATA_ITEMS,
        description="duration_ms / duration_seconds become the duration histogram.",
        json_schema_extra={"additionalProperties": False},  # keys outside the pattern are refused
    )


class BusinessIn(BaseModel):
    """Business figures, as in ``collect_business_metrics``: revenue adds up, the others replace."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "examples": [{"tenant_id": "t1", "revenue": 12.5, "active_users": 340}],
            # What ``_something`` checks, said in the schema: at least one figure, given as a number.
            "anyOf": [{"required": [f], "properties": {f: {"type": "number"}}} for f in BUSINESS_FIGURES],
        },
    )

    tenant_id: TenantId
    revenue: float | None = Field(None, ge=0, le=MAX_REVENUE, allow_inf_nan=False)
    active_users: float | None = Field(None, ge=0, le=MAX_ACTIVE_USERS, allow_inf_nan=False)
    conversion_rate: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)

    @model_validator(mode="after")
    def _something(self) -> BusinessIn:
        if self.revenue is None and self.active_users is None and self.conversion_rate is None:
            raise ValueError("give at least one of revenue, active_users, conversion_rate")
        return self

    def to_figures(self) -> BusinessFigures:
        return BusinessFigures(self.tenant_id, self.revenue, self.active_users, self.conversion_rate)


class BatchIn(BaseModel):
    """Many events and business figures, accepted or rejected as a whole."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "anyOf": [{"required": [f], "properties": {f: {"minItems": 1}}} for f in ("events", "business")]
        },
    )

    events: list[EventIn] = Field(default_factory=list)
    business: list[BusinessIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> BatchIn:
        if not self.events and not self.business:
            raise ValueError("the batch is empty: give events and/or business")
        return self


class IngestResult(BaseModel):
    """What an accepted ingest request added."""

    accepted_events: int
    accepted_business: int
    request_id: str


class Health(BaseModel):
    status: Literal["ok", "starting", "redis_unreachable"]
