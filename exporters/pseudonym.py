"""Keyed pseudonyms for user ids: HMAC-SHA256 under a versioned secret, so raw ids are never kept.

Rotation: a new key becomes current at once, but the previous key stays active (its pseudonyms keep
feeding the unique-user sketches) for ``overlap`` seconds, the longest counting window. Until then the
windows that started before the switch are read from the old key's sketches, so a user seen before and
after the rotation is counted once. After the overlap the old key is forgotten.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(slots=True)
class KeyVersion:
    version: str
    key: bytes
    since: float  # unix time this key started feeding sketches (-inf: since the process started)
    until: float  # unix time after which it is no longer needed (inf while current)


class Pseudonymizer:
    """Versioned HMAC keys; ``active(now)`` lists the versions whose pseudonyms must still be counted."""

    def __init__(self, keys: dict[str, bytes], current: str, overlap: float) -> None:
        if current not in keys:
            raise ValueError(f"pseudonym_key_current {current!r} is not in pseudonym_keys {sorted(keys)}")
        if not keys[current]:
            raise ValueError(f"pseudonym key {current!r} is empty")
        self.overlap = overlap
        self._versions = [KeyVersion(current, bytes(keys[current]), float("-inf"), float("inf"))]

    def rotate(self, version: str, key: bytes, now: float) -> None:
        """Make ``key`` current; the previous key stays active for the overlap."""
        if not key:
            raise ValueError("pseudonym key must not be empty")
        if any(v.version == version for v in self._versions):
            raise ValueError(f"pseudonym key version {version!r} was already used")
        self._versions[-1].until = now + self.overlap
        self._versions.append(KeyVersion(version, bytes(key), now, float("inf")))

    def active(self, now: float) -> list[KeyVersion]:
        """Versions still needed at ``now`` (oldest first); expired ones are dropped for good."""
        self._versions = [v for v in self._versions if v.until > now]
        return self._versions

    @staticmethod
    def digests(key: bytes, user_ids: Iterable[str]) -> list[bytes]:
        """The same 64 bits as ``pseudonyms``, as bytes: what the Redis HyperLogLogs are fed."""
        keyed = hmac.new(key, digestmod=hashlib.sha256)
        out = []
        for user_id in user_ids:
            mac = keyed.copy()
            mac.update(user_id.encode())
            out.append(mac.digest()[:8])
        return out

    @staticmethod
    def pseudonyms(key: bytes, user_ids: Iterable[str]) -> list[int]:
        """64 bits of HMAC-SHA256(key, user_id) each: plenty for HLL, useless to reverse.

        The keyed state is set up once and copied per id, which halves the cost of ``hmac.digest``.
        """
        keyed = hmac.new(key, digestmod=hashlib.sha256)
        out = []
        for user_id in user_ids:
            mac = keyed.copy()
            mac.update(user_id.encode())
            out.append(int.from_bytes(mac.digest()[:8], "big"))
        return out


def key_id(key: bytes) -> str:
    """A key's name in Redis key names: the same on every replica given the same secret, and different
    for a different secret under the same version name; it reveals nothing of the key."""
    return hmac.new(key, b"tenantpulse redis key id", hashlib.sha256).hexdigest()[:12]
