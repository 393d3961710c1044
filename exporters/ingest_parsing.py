"""Turn an ingest request body (JSON event, JSON batch, or NDJSON) into a validated batch, or an ``ApiError``.

Errors name the field the way the client wrote it: ``events[2].event_type`` for a JSON batch,
``lines[4].tenant_id`` for NDJSON (lines counted from 0), ``body`` when the JSON itself is broken.
Error details never echo the input back (it may hold user ids).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from tenantpulse.exporters.api_models import BatchIn, BusinessIn, EventIn
from tenantpulse.exporters.events import BusinessFigures, Event
from tenantpulse.web.errors import ApiError
from tenantpulse.web.validation import clean_errors

JSON_TYPES = {"application/json", "text/json"}
NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}
BUSINESS_FIELDS = frozenset({"revenue", "active_users", "conversion_rate"})
_INDEX = re.compile(r"^(events|business)\[(\d+)\]")


@dataclass
class ParsedBatch:
    """Validated events and figures, plus where each came from in the request (for error messages).

    An origin list left ``None`` means item ``i`` came from ``events[i]`` / ``business[i]`` of a JSON
    batch: the common case, whose 500 origin strings would otherwise be built for every batch.
    """

    events: list[Event] = field(default_factory=list)
    business: list[BusinessFigures] = field(default_factory=list)
    event_origin: list[str] | None = field(default_factory=list)
    business_origin: list[str] | None = field(default_factory=list)

    def tenants(self) -> Iterator[str]:
        yield from (e.tenant_id for e in self.events)
        yield from (b.tenant_id for b in self.business)

    def tenant_fields(self) -> Iterator[tuple[str, str]]:
        for i, e in enumerate(self.events):
            yield f"{self._origin('events', i)}.tenant_id".lstrip("."), e.tenant_id
        for i, b in enumerate(self.business):
            yield f"{self._origin('business', i)}.tenant_id".lstrip("."), b.tenant_id

    def _origin(self, kind: str, index: int) -> str:
        origins = self.event_origin if kind == "events" else self.business_origin
        return f"{kind}[{index}]" if origins is None else origins[index]

    def where(self, collector_field: str) -> str:
        """Map the collector's ``events[i]...`` field back to where the client put that item."""
        match = _INDEX.match(collector_field)
        if not match:
            return collector_field
        kind, index = match.group(1), int(match.group(2))
        if index >= len(self.events if kind == "events" else self.business):
            return collector_field
        return (self._origin(kind, index) + collector_field[match.end() :]).lstrip(".")


def parse(body: bytes, content_type: str | None, max_items: int) -> ParsedBatch:
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media in NDJSON_TYPES:
        return _parse_ndjson(body, max_items)
    if media in JSON_TYPES or media.endswith("+json"):
        return _parse_json(body, max_items)
    raise ApiError(
        415,
        "unsupported_media_type",
        "not accepted; use application/json or application/x-ndjson",
        field="Content-Type",
    )


def _loads(text: bytes | str, where: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
        reason = f"malformed JSON: {exc}" if isinstance(exc, json.JSONDecodeError) else "malformed JSON"
        raise ApiError(422, "invalid_input", reason, field=where) from None


def _parse_json(body: bytes, max_items: int) -> ParsedBatch:
    if body[:32].lstrip().startswith(b'{"events"'):
        # The common batch shape: let pydantic-core parse and validate the bytes in one pass
        # (about 40 % less time per 500-event batch than json.loads + validating the dicts).
        return _from_batch(_validate(BatchIn, body, ""), max_items)
    doc = _loads(body, "body")
    if not isinstance(doc, dict):
        raise ApiError(422, "invalid_input", "expected a JSON object (an event or a batch)", field="body")
    if "events" in doc or "business" in doc:
        return _from_batch(_validate(BatchIn, doc, ""), max_items)
    batch = ParsedBatch()
    _add_item(batch, doc, "")
    return batch


def _from_batch(model: BaseModel, max_items: int) -> ParsedBatch:
    assert isinstance(model, BatchIn)
    if len(model.events) + len(model.business) > max_items:
        raise _too_many(max_items, "events")
    events: list[Event] = list(model.events)  # the validated models are the events (see ``Event``)
    return ParsedBatch(events, [b.to_figures() for b in model.business], None, None)


def _parse_ndjson(body: bytes, max_items: int) -> ParsedBatch:
    batch = ParsedBatch()
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise ApiError(422, "invalid_input", "body is not UTF-8", field="body") from None
    for i, line in enumerate(text.split("\n")):
        if not line.strip():
            continue
        if len(batch.events) + len(batch.business) >= max_items:
            raise _too_many(max_items, "lines")
        where = f"lines[{i}]"
        doc = _loads(line, where)
        if not isinstance(doc, dict):
            raise ApiError(422, "invalid_input", "expected a JSON object on each line", field=where)
        _add_item(batch, doc, where)
    if not batch.events and not batch.business:
        raise ApiError(422, "invalid_input", "no events in the body", field="body")
    return batch


def _add_item(batch: ParsedBatch, doc: dict[str, Any], where: str) -> None:
    """An object with business fields and no event_type is business figures; anything else an event."""
    if "event_type" not in doc and BUSINESS_FIELDS & doc.keys():
        figures = _validate(BusinessIn, doc, where)
        assert isinstance(figures, BusinessIn)
        batch.business.append(figures.to_figures())
        assert batch.business_origin is not None
        batch.business_origin.append(where)
    else:
        event = _validate(EventIn, doc, where)
        assert isinstance(event, EventIn)
        batch.events.append(event)
        assert batch.event_origin is not None
        batch.event_origin.append(where)


def _validate(model: type[BaseModel], doc: dict[str, Any] | bytes, where: str) -> BaseModel:
    """Validate a parsed object, or raw JSON bytes (then broken JSON is reported on ``body``)."""
    try:
        return model.model_validate_json(doc) if isinstance(doc, bytes) else model.model_validate(doc)
    except ValidationError as exc:
        errors = clean_errors(exc.errors(include_url=False), prefix=where)  # input: to redact it
        raise ApiError(
            422, "invalid_input", errors[0]["reason"], field=errors[0]["field"], detail=errors
        ) from None


def _too_many(max_items: int, where: str) -> ApiError:
    return ApiError(
        413, "batch_too_large", f"more than {max_items} items in one request; split it", field=where
    )
