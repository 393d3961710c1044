"""Who is looking: the viewer's key (a browser sends it as the password of basic auth, scripts as a
bearer token) and the tenant it is bound to, or None for a key allowed on every tenant.

Keys are the exporter's keys file, as for the gateway. A key without ``read`` is refused (403).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from tenantpulse.security.keys import ANY_TENANT, KeyRing
from tenantpulse.web.auth import allowed, presented_key
from tenantpulse.web.errors import ApiError

CHALLENGE = 'Basic realm="tenantpulse dashboards", charset="UTF-8"'


@dataclass(frozen=True)
class Viewer:
    token: str  # the key itself: a tenant key's queries go to the gateway with it
    tenant: str | None  # None: every tenant


def _unauthorized(reason: str) -> ApiError:
    return ApiError(
        401, "unauthorized", reason, field="Authorization", headers={"WWW-Authenticate": CHALLENGE}
    )


def viewer(request: Request, ring: KeyRing) -> Viewer:
    given = presented_key(request)
    if given is None:
        raise _unauthorized(
            "send a read key as the password of basic auth or as 'Authorization: Bearer <key>'"
        )
    key = ring.authenticate(given)
    if key is None:
        raise _unauthorized("unknown or expired key")
    request.state.key_id = key.key_id
    if allowed(key, None, "read"):
        return Viewer(given, None)
    if key.tenant != ANY_TENANT and key.allows(key.tenant, "read"):
        request.state.tenant = key.tenant
        return Viewer(given, key.tenant)
    raise ApiError(403, "forbidden", f"key {key.key_id!r} may not read", field="Authorization")
