"""The one error type and the one JSON error body of every app of the bundle.

Raise ``ApiError(status, error, reason, field=...)`` anywhere in a request; the app's handler answers
``status`` with ``{"error", "field", "reason", "detail", "request_id"}`` (fields that are None left
out) and the error's headers (``WWW-Authenticate``, ``Retry-After``, ...). ``field`` names what was
wrong the way the client wrote it: ``events[2].event_type``, ``tenant_id``, ``Authorization``, ``body``.

No answer echoes what the caller sent (it may hold user ids, e-mails, tenant names): a reason says what
is wrong with a field, not what the field held. A key the caller chose is named only while it is a
plain lower-case name (``colour``, ``duration_ms``: the API's own style); at any other key ``field``
stops at its parent. Messages also written for the CLI (spec errors) or by pydantic go through
``redact``.
"""

from __future__ import annotations

import ast
import contextlib
import re
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from tenantpulse.kernel.errors import SpecError

NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
"""A key the caller chose that an answer may name: a plain lower-case name."""
# A quoted ('x', "x", backslash escapes inside) or bracketed ([x], {{ x }}) fragment of a message.
_FRAGMENT = re.compile(r"""'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|\{\{.*?\}\}|\[[^\[\]\n]*\]""")
_FIELD_PART = re.compile(r"\[\d+\]|[^.\[]+|\[[^\]]*\]?")


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: ``field`` names what was wrong (``events[2].event_type``, ``body``)."""

    error: str = Field(
        description="invalid_input, unauthorized, forbidden, payload_too_large, rate_limited, ..."
    )
    field: str | None = None
    reason: str
    detail: list[dict[str, Any]] | None = None
    request_id: str | None = None


class ApiError(Exception):
    """Raised anywhere in a request to answer ``status`` with an ``ErrorBody``; the app's handler renders it."""

    def __init__(
        self,
        status: int,
        error: str,
        reason: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        detail: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status} {error}: {reason}")
        self.status = status
        self.body = ErrorBody(error=error, field=field, reason=reason, detail=detail)
        self.headers = headers or {}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (401, "Missing, unknown or expired API key (with `WWW-Authenticate: Bearer`)."),
        (403, "The key may not do this for this tenant."),
        (422, "Invalid input; `field` names it."),
    )
}
"""OpenAPI ``responses`` for a route that takes a key and input."""


def error_response(
    request: Request, status: int, body: ErrorBody, headers: dict[str, str] | None = None
) -> JSONResponse:
    """``body`` as JSON with the request's id (set by ``web.context.RequestContext``)."""
    body.request_id = getattr(request.state, "request_id", None)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


async def api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(request, exc.status, exc.body.model_copy(), exc.headers)


HTTP_REASONS = {404: "no such route", 405: "this route does not take this method; Allow lists those it does"}


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own 404 (no such route) and 405 (with every method the path serves in ``Allow``).

    The reason is fixed: an ``HTTPException``'s detail may quote the request."""
    assert isinstance(exc, StarletteHTTPException)
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    reason = HTTP_REASONS.get(exc.status_code) or _phrase(exc.status_code)
    return error_response(request, exc.status_code, ErrorBody(error=error, reason=reason), headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "HTTP error"


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path (Starlette names only the first matching route's)."""
    routes = request.app.router.routes
    return [
        method
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]


# --- answers that do not echo input -------------------------------------------------------------


def sent_strings(*given: object) -> Iterator[str]:
    """Every string in ``given`` (a body, path values) and every key of it that is not a plain name."""
    for value in given:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            yield from (k for k in value if isinstance(k, str) and not NAME_RE.match(k))
            yield from sent_strings(*value.values())
        elif isinstance(value, list | tuple):
            yield from sent_strings(*value)


def redact(text: str, *given: object) -> str:
    """``text`` with each quoted or bracketed fragment holding something of ``given`` replaced by ``...``.

    For messages written for the CLI as well, which quote the value at fault (``unknown indicator
    'eror_rate'; valid: ...`` -> ``unknown indicator '...'; valid: ...``). A fragment without a letter or
    digit (``'{{'``, ``'>>'``) is kept: it says what is wrong and can hold no data."""
    if not _FRAGMENT.search(text):
        return text
    sent = [s for s in sent_strings(*given) if s]
    # Again until nothing changes: a fragment taken by mistake (from an apostrophe) may hide another.
    while sent and (once := _redact_once(text, sent)) != text:
        text = once
    return text


def _redact_once(text: str, sent: list[str]) -> str:
    out, pos = [], 0
    while match := _FRAGMENT.search(text, pos):
        fragment = match.group()
        width = 2 if fragment.startswith("{{") else 1
        if _holds(fragment, fragment[width:-width], sent):
            out.append(text[pos : match.start()] + fragment[:width] + "..." + fragment[-width:])
            pos = match.end()
        else:  # search again from its next character: an apostrophe, or a list holding quoted values
            out.append(text[pos : match.start() + 1])
            pos = match.start() + 1
    return "".join(out) + text[pos:]


def _holds(fragment: str, inner: str, sent: list[str]) -> bool:
    if not any(c.isalnum() for c in inner):
        return False
    if fragment[0] in "'\"":
        with contextlib.suppress(ValueError, SyntaxError):
            inner = str(ast.literal_eval(fragment))  # undo repr()'s escapes
    inner = inner.strip()
    return any(inner in s for s in sent)


def named_field(field: str) -> str:
    """``field`` up to its first part that is not a plain name or an index: ``labels.X-Y`` -> ``labels``."""
    parts = []
    for part in _FIELD_PART.findall(field):
        if not NAME_RE.match(part) and not (part.startswith("[") and part[1:-1].isdigit()):
            break
        parts.append(part)
    return ".".join(parts).replace(".[", "[") or "body"


def spec_error(exc: SpecError, error: str, *given: object, item_key: str | None = None) -> ApiError:
    """A refused spec (``given``: what the caller sent) as a 422 naming the field and the reason.

    The source (``alert 'X'``) is said only when it is not the caller's input (another alert of the
    spec file); with ``item_key`` the detail names that alert or dashboard on the same condition."""
    reason = redact(exc.reason, *given)
    if exc.source is not None and redact(exc.source, *given) == exc.source:
        reason = f"{exc.source}: {reason}"
    field = named_field(exc.field) if exc.field else None
    detail = None
    if item_key is not None:
        sent = exc.item is not None and any(exc.item in s for s in sent_strings(*given))
        detail = [{item_key: None if sent else exc.item, "field": field, "reason": reason}]
    return ApiError(422, error, reason, field=field, detail=detail)
