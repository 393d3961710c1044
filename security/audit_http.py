"""Audit trail for an HTTP app: one hash-chained entry per state-changing call and per refused key.

A pure ASGI middleware, shared by the exporter and the sidecar. It records after the answer is sent:
the route's action name (``AUDITED``), the outcome from the status, the actor as the key id (the
middleware looks the bearer token up in ``app.state.keyring`` itself, so every app gets the same
actor; the token is never written), the tenant (path ``tenant_id``, else what the handler put in
``request.state.tenant``), the target (path id, else the ``id`` of the JSON answer) and the request id.
Ingest calls that succeed are not audited (they are data, counted in ``/metrics``), but a 401/403 on
any route is — within one budget (``RefusalBudget``) for every route, audited or not, so a flood of bad
keys cannot fill the disk; the next refusal entry counts those skipped.

When the log cannot be written (a full disk: ``OSError``), the failure is logged and the entry counted
as lost; from then on the audited routes answer 503 ``audit_unavailable`` *before* changing anything,
until a write succeeds again (``AuditLog.available``, which records ``audit.resumed``).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import structlog
from starlette.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantpulse.security.audit import AuditLog

log = structlog.get_logger("tenantpulse.audit")

# (method, route template) -> action. One table for every app: a route an app lacks never matches.
AUDITED: dict[tuple[str, str], str] = {
    ("POST", "/analytics/alerts"): "alert.create",
    ("PUT", "/analytics/alerts/{alert_id}"): "alert.replace",
    ("DELETE", "/analytics/alerts/{alert_id}"): "alert.delete",
    ("POST", "/analytics/dashboards"): "dashboard.create",
    ("DELETE", "/analytics/tenants/{tenant_id}"): "tenant.erase",
    ("POST", "/analytics/ml/train"): "model.train",
}
_AUDITED_PATHS = [(method, compile_path(template)[0]) for method, template in AUDITED]
TARGET_PARAMS = ("alert_id", "dashboard_id", "tenant_id")
REFUSALS_PER_SECOND, REFUSAL_BURST = 20.0, 100.0
MAX_CAPTURE = 64 * 1024
MAX_FIELD = 128  # answers of audited routes are small; a bigger one is not parsed for its id
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def outcome(status: int) -> str:
    if 200 <= status < 300:
        return "ok"
    return {401: "unauthenticated", 403: "forbidden"}.get(status, "failed")


class RefusalBudget:
    """At most ``rate`` refusal entries per second (``burst`` at once): a flood of bad keys must not fill
    the disk. Refusals over budget are counted, and the next refusal entry says how many were skipped."""

    def __init__(self, rate: float = REFUSALS_PER_SECOND, burst: float = REFUSAL_BURST) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.last = burst, time.monotonic()
        self.skipped = 0

    def take(self) -> int | None:
        """None when over budget; else how many refusals were skipped since the last entry."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            self.skipped += 1
            return None
        self.tokens -= 1
        skipped, self.skipped = self.skipped, 0
        return skipped


class AuditTrail:
    """Wraps an app; entries go to ``app.state.audit`` (an ``AuditLog``), or nowhere when it is None."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.refusals = RefusalBudget()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        audit: AuditLog | None = getattr(scope["app"].state, "audit", None)
        refused = audit is not None and audit.failure is not None and self._changes_state(scope)
        if refused and audit is not None and not audit.available():
            await self._unavailable(audit, scope, receive, send)
            return
        status = 500
        body = bytearray()

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and len(body) <= MAX_CAPTURE:
                body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self._record(scope, status, bytes(body))

    @staticmethod
    def _changes_state(scope: Scope) -> bool:
        """Whether the request goes to an audited route (matched here, from ``AUDITED``: routing runs
        inside the app, after this middleware)."""
        path = scope.get("path", "")
        return any(method == scope["method"] and regex.match(path) for method, regex in _AUDITED_PATHS)

    @staticmethod
    async def _unavailable(audit: AuditLog, scope: Scope, receive: Receive, send: Send) -> None:
        log.error(
            "state change refused: the audit log cannot be written",
            path=str(audit.path),
            error=audit.failure,
            method=scope["method"],
            url_path=scope.get("path"),
        )
        state = scope.get("state", {})
        answer = {
            "error": "audit_unavailable",
            "field": "audit_log",
            "reason": f"the audit log cannot be written ({audit.failure}); "
            "state changes are refused until it can",
            "request_id": state.get("request_id"),
        }
        response = JSONResponse(
            {k: v for k, v in answer.items() if v is not None}, status_code=503, headers={"Retry-After": "30"}
        )
        await response(scope, receive, send)

    def _record(self, scope: Scope, status: int, body: bytes) -> None:
        audit: AuditLog | None = getattr(scope["app"].state, "audit", None)
        route = getattr(scope.get("route"), "path", None)
        action = AUDITED.get((scope["method"], route or ""))
        if audit is None or (action is None and status not in (401, 403)):
            return
        extra: dict[str, Any] = {}
        if status in (401, 403):  # every refusal, whatever the route: one budget
            skipped = self.refusals.take()
            if skipped is None:
                return
            if skipped:
                extra["refusals_not_recorded"] = skipped
        state = scope.get("state", {})
        params = scope.get("path_params", {})
        answer = _json(body)
        actor, key_tenant = _actor(scope)
        tenant = params.get("tenant_id") or state.get("tenant") or answer.get("tenant_id") or key_tenant
        target = next((str(params[p]) for p in TARGET_PARAMS if p in params), None) or answer.get("id")
        try:
            audit.record(
                actor=actor,
                action=action or f"{scope['method']} {route or 'unmatched'}",
                outcome=outcome(status),
                tenant=_clip(tenant),
                target=_clip(target),
                request_id=state.get("request_id") or _request_id(scope),
                status=status,
                **extra,
            )
        except OSError as exc:  # a full disk must not turn an answered request into a crash
            log.error(
                "audit write failed; state changes answer 503 until the audit log can be written",
                path=str(audit.path),
                error=exc.strerror or str(exc),
                action=action,
            )


def _actor(scope: Scope) -> tuple[str, str | None]:
    """(key id or 'anonymous' / 'unknown-key', the key's own tenant unless it is '*')."""
    header = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), None)
    if header is None:
        return "anonymous", None
    scheme, _, token = header.decode("latin-1").partition(" ")
    keyring = getattr(scope["app"].state, "keyring", None)
    key = keyring.authenticate(token.strip()) if keyring is not None and scheme.lower() == "bearer" else None
    if key is None:
        return "unknown-key", None
    return key.key_id, None if key.tenant == "*" else key.tenant


def _clip(value: object) -> str | None:
    """Path values are the caller's text: keep entries bounded (JSON encoding keeps them one line)."""
    return None if value is None else str(value)[:MAX_FIELD]


def _json(body: bytes) -> dict[str, Any]:
    if not body or len(body) > MAX_CAPTURE:
        return {}
    try:
        doc = json.loads(body)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _SAFE_ID.match(value.decode("latin-1")):
            return value.decode("latin-1")
    return uuid.uuid4().hex
