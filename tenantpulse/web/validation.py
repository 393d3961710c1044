"""FastAPI's ``RequestValidationError`` as the one error body: 422, ``field`` naming the first mistake.

``field`` is the path inside the part of the request at fault, the way the client wrote it
(``indicators[1]``, ``window``, ``tenant_id``; ``body`` for the body as a whole); ``detail`` lists every
mistake as ``{field, reason, type}``. Input values are never echoed back (they may hold user ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from tenantpulse.web.errors import ErrorBody, error_response

REQUEST_PARTS = ("body", "query", "path", "header", "cookie")


def field_path(loc: Sequence[Any], prefix: str = "") -> str:
    """``("events", 2, "event_type")`` -> ``events[2].event_type``."""
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.lstrip(".") or "body"


def clean_errors(errors: Sequence[Any], prefix: str = "", drop_first: bool = False) -> list[dict[str, Any]]:
    """Pydantic/FastAPI errors as ``{field, reason, type}``, without echoing input values."""
    out = []
    for err in errors:
        loc = list(err.get("loc", ()))
        if drop_first and loc and loc[0] in REQUEST_PARTS:
            loc = loc[1:]
        reason = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        out.append({"field": field_path(loc, prefix), "reason": reason, "type": err.get("type")})
    return out


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = clean_errors(exc.errors(), drop_first=True)
    field, reason = (errors[0]["field"], errors[0]["reason"]) if errors else (None, "invalid request")
    body = ErrorBody(error="invalid_input", field=field, reason=reason, detail=errors)
    return error_response(request, 422, body)
