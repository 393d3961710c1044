"""FastAPI's ``RequestValidationError`` as the one error body: 422, ``field`` naming the first mistake.

``field`` is the path inside the part of the request at fault, the way the client wrote it
(``indicators[1]``, ``window``, ``tenant_id``; ``body`` for the body as a whole); ``detail`` lists every
mistake as ``{field, reason, type}``. Input values are never echoed back (they may hold user ids): not
pydantic's ``input``, not a value its message quotes, and not a key that is not a plain name (``field``
stops at its parent then, see ``web.errors``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from tenantpulse.web.errors import NAME_RE, ErrorBody, error_response, redact

REQUEST_PARTS = ("body", "query", "path", "header", "cookie")


def field_path(loc: Sequence[Any], prefix: str = "") -> str:
    """``("events", 2, "event_type")`` -> ``events[2].event_type``."""
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.lstrip(".") or "body"


def clean_errors(errors: Sequence[Any], prefix: str = "", drop_first: bool = False) -> list[dict[str, Any]]:
    """Pydantic/FastAPI errors (with their ``input``) as ``{field, reason, type}``, without echoing input."""
    out = []
    for err in errors:
        loc = list(err.get("loc", ()))
        if drop_first and loc and loc[0] in REQUEST_PARTS:
            loc = loc[1:]
        reason = redact(str(err.get("msg", "invalid")).removeprefix("Value error, "), err.get("input"))
        cut = next((i for i, p in enumerate(loc) if isinstance(p, str) and not NAME_RE.match(p)), None)
        if cut is not None:  # a key the caller chose: the field stops at its parent
            reason, loc = f"{_unnamed(err, loc)}: {reason}", loc[:cut]
        out.append({"field": field_path(loc, prefix), "reason": reason, "type": err.get("type")})
    return out


def _unnamed(err: Any, loc: list[Any]) -> str:
    """What the part left out of the field is, since the field no longer says."""
    if "[key]" in loc:
        return "a key in it"
    if err.get("type") == "extra_forbidden":
        return "an unknown field in it"
    return "an entry in it"


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = clean_errors(exc.errors(), drop_first=True)
    field, reason = (errors[0]["field"], errors[0]["reason"]) if errors else (None, "invalid request")
    body = ErrorBody(error="invalid_input", field=field, reason=reason, detail=errors)
    return error_response(request, 422, body)
