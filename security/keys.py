"""API keys: loaded from a YAML keys file, kept only as SHA-256 hashes, checked in constant time.

Keys file::

    keys:
      - {key: "dev-key-t1", tenant: t1, scopes: [write, read]}          # plain, for development
      - {key_sha256: "<hex>", tenant: "*", scopes: [admin], id: ops, expires: 2027-01-01T00:00:00Z}
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tenantpulse.kernel.errors import UsageError
from tenantpulse.kernel.yamlfile import read_yaml

SCOPES = frozenset({"read", "write", "admin"})
ANY_TENANT = "*"


def sha256_hex(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """One key as held in memory: never the key itself, only its hash and what it may do."""

    key_id: str
    sha256: str
    tenant: str
    scopes: frozenset[str]
    expires: datetime | None = None

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires is not None and (now or datetime.now(UTC)) >= self.expires

    def allows(self, tenant: str | None, scope: str) -> bool:
        """Admin keys may do anything; others only their scopes, on their own tenant."""
        if "admin" in self.scopes:
            return self.tenant == ANY_TENANT or tenant is None or tenant == self.tenant
        if scope not in self.scopes:
            return False
        return tenant is not None and (self.tenant == ANY_TENANT or tenant == self.tenant)


class KeyRing:
    """The set of valid keys, indexed by hash."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._by_hash = {k.sha256: k for k in keys}

    def __len__(self) -> int:
        return len(self._by_hash)

    def authenticate(self, token: str) -> ApiKey | None:
        """The key for a bearer token, or None if unknown or expired."""
        digest = sha256_hex(token)
        key = self._by_hash.get(digest)
        if key is None or not hmac.compare_digest(key.sha256, digest) or key.expired():
            return None
        return key

    @classmethod
    def from_file(cls, path: str | Path) -> KeyRing:
        doc = read_yaml(path, "keys file")
        entries = (doc or {}).get("keys") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise UsageError(
                f"{path}: expected a mapping with a 'keys' list (the file starts with a 'keys:' line)"
            )
        return cls(_parse_entry(e, i, path) for i, e in enumerate(entries))


def _parse_entry(entry: object, index: int, path: str | Path) -> ApiKey:
    where = f"{path}: keys[{index}]"
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: expected a mapping")
    unknown = set(entry) - {"key", "key_sha256", "tenant", "scopes", "id", "expires"}
    if unknown:
        raise UsageError(f"{where}: unknown field(s) {sorted(unknown)}")
    if ("key" in entry) == ("key_sha256" in entry):
        raise UsageError(f"{where}: give exactly one of 'key' or 'key_sha256'")
    digest = sha256_hex(str(entry["key"])) if "key" in entry else str(entry["key_sha256"]).lower()
    if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
        raise UsageError(f"{where}: key_sha256 must be 64 hex characters")
    tenant = entry.get("tenant")
    if not isinstance(tenant, str) or not tenant:
        raise UsageError(f"{where}: 'tenant' is required (a tenant id or '*')")
    scopes = entry.get("scopes", [])
    if (
        not isinstance(scopes, list)
        or not scopes
        or not all(isinstance(s, str) and s in SCOPES for s in scopes)
    ):
        raise UsageError(f"{where}: 'scopes' must be a non-empty list of {sorted(SCOPES)}")
    expires = entry.get("expires")
    if expires is not None:
        if isinstance(expires, str):
            try:
                expires = datetime.fromisoformat(expires.replace("Z", "+00:00"))
            except ValueError:
                raise UsageError(f"{where}: 'expires' is not an ISO 8601 time") from None
        if not isinstance(expires, datetime):
            raise UsageError(f"{where}: 'expires' must be an ISO 8601 time")
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
    return ApiKey(str(entry.get("id") or digest[:12]), digest, tenant, frozenset(scopes), expires)
