"""The one error type and the one JSON error body of every app of the bundle.

Raise ``ApiError(status, error, reason, field=...)`` anywhere in a request; the app's handler answers
``status`` with ``{"error", "field", "reason", "detail", "request_id"}`` (fields that are None left
out) and the error's headers (``WWW-Authenticate``, ``Retry-After``, ...). ``field`` names what was
wrong the way the client wrote it: ``events[2].event_type``, ``tenant_id``, ``Authorization``, ``body``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match


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


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own 404 (no such route) and 405 (with every method the path serves in ``Allow``)."""
    assert isinstance(exc, StarletteHTTPException)
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return error_response(request, exc.status_code, ErrorBody(error=error, reason=str(exc.detail)), headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path (Starlette names only the first matching route's)."""
    routes = request.app.router.routes
    return [
        method
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]
