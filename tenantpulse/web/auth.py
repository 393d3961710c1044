"""API keys, scopes and tenants as FastAPI dependencies, shared by every router of every app.

Usage in any router::

    @router.get("/things/{tenant_id}")
    async def read(tenant_id: str, key: Annotated[ApiKey, Depends(require_scope("read"))]): ...

    @router.post("/admin/thing")
    async def admin(key: Annotated[ApiKey, Depends(require_scope("admin"))]): ...

Keys come from ``app.state.keyring`` (a ``security.keys.KeyRing``) as ``Authorization: Bearer <key>``.
With a ``{tenant_id}`` path parameter the key must be allowed that scope on that tenant; without one it
must be allowed on every tenant (a ``tenant: "*"`` key). Tenants named in a body or a query are checked
in the handler with ``check_tenant`` / ``check_tenants``. 401 means "who are you?" (with
``WWW-Authenticate: Bearer``), 403 "not for you"; both name the ``field`` at fault.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tenantpulse.security.keys import ANY_TENANT, ApiKey, KeyRing
from tenantpulse.web.errors import ApiError

bearer = HTTPBearer(
    auto_error=False, description="An API key from the keys file: `Authorization: Bearer <key>`."
)


def presented_key(request: Request) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``Basic <any user:key>``: what scripts and
    Grafana's datasources send to the gateway, and what a browser sends to the live dashboards."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, sep, password = decoded.partition(":")
        return password if sep and password else None
    return None


def keyring(request: Request) -> KeyRing:
    ring: KeyRing = request.app.state.keyring
    return ring


def unauthorized(reason: str) -> ApiError:
    return ApiError(
        401, "unauthorized", reason, field="Authorization", headers={"WWW-Authenticate": "Bearer"}
    )


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> ApiKey:
    """The caller's key. The token itself is never logged or stored; only its key id is bound to the request."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("send an API key as 'Authorization: Bearer <key>'")
    key = keyring(request).authenticate(credentials.credentials)
    if key is None:
        raise unauthorized("unknown or expired API key")
    request.state.key_id = key.key_id
    return key


def allowed(key: ApiKey, tenant: str | None, scope: str) -> bool:
    """``tenant=None`` means all tenants at once, which only a ``tenant: "*"`` key may touch."""
    if tenant is None:
        return key.tenant == ANY_TENANT and (scope in key.scopes or "admin" in key.scopes)
    return key.allows(tenant, scope)


def forbidden(key: ApiKey, tenant: str | None, scope: str, field: str) -> ApiError:
    """Names the key (its id, from the keys file) and the field, never the tenant the caller wrote."""
    target = "the tenant named in this field" if tenant is not None else "all tenants"
    return ApiError(403, "forbidden", f"key {key.key_id!r} may not {scope} {target}", field=field)


def check_tenant(key: ApiKey, tenant: str | None, scope: str, field: str) -> None:
    """Refuse (403 naming ``field``) unless ``key`` may ``scope`` on ``tenant`` (None: all tenants)."""
    if not allowed(key, tenant, scope):
        raise forbidden(key, tenant, scope, field)


def check_tenants(key: ApiKey, scope: str, tenants: Iterable[tuple[str, str]]) -> None:
    """Refuse the whole request if any ``(field, tenant)`` named in a body is not allowed for the key."""
    checked: set[str] = set()
    for field, tenant in tenants:
        if tenant not in checked:
            check_tenant(key, tenant, scope, field)
            checked.add(tenant)


def require_scope(scope: str) -> Callable[..., Awaitable[ApiKey]]:
    """Dependency: an authenticated key allowed ``scope`` on the path's ``{tenant_id}`` (or on all tenants)."""

    async def dependency(request: Request, key: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
        tenant = request.path_params.get("tenant_id")
        if tenant is not None:
            request.state.tenant = tenant
        check_tenant(key, tenant, scope, "tenant_id" if tenant is not None else "Authorization")
        return key

    return dependency


Key = Annotated[ApiKey, Depends(authenticate)]
"""A handler parameter: any valid key (the handler checks the tenants it names)."""
