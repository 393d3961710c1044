"""Per-request context: a request id, one access-log line, and a JSON 500 instead of a traceback.

A client that goes away before its request is whole (``ClientDisconnect``) is logged with status 499,
the nginx convention, and not as an error.

A pure ASGI middleware (no BaseHTTPMiddleware) so it costs little on the ingest hot path. Handlers add
``request.state.tenant`` / ``key_id`` and the access line carries them; it never carries headers, query
values or bodies, so keys and user ids stay out of the logs.
"""

from __future__ import annotations

import json
import re
import time
import traceback
import uuid

import structlog
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
# A client-supplied id is kept only if it is short and plain, so it cannot forge or bloat log lines.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access_log = structlog.get_logger("tenantpulse.access")


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        started = False
        t0 = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:  # gone, or cut off by the server's request timeout: nobody to answer
            status = 499
        except Exception as exc:  # noqa: BLE001 - the catch-all: log it, answer JSON, keep serving
            access_log.error(
                "unhandled error",
                error_type=type(exc).__name__,
                traceback="".join(traceback.format_exception(exc)),
            )
            if not started:
                await _internal_error(send_with_id, request_id)
        finally:
            access_log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - t0) * 1000, 3),
                tenant=state.get("tenant"),
                key_id=state.get("key_id"),
            )
            structlog.contextvars.clear_contextvars()


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            if _SAFE_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


async def _internal_error(send: Send, request_id: str) -> None:
    body = json.dumps(
        {"error": "internal_error", "reason": "internal error; see the server log", "request_id": request_id}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
