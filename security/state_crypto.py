"""AES-256-GCM for state at rest (the sidecar's learned baselines).

A file is ``MAGIC || nonce(12) || ciphertext+tag``; the magic is also the associated data, so a file
from another format or a flipped bit is refused. Wrong key and tampering look the same to GCM, and the
error says so rather than crashing.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tenantpulse.kernel.errors import UsageError

MAGIC = b"TPSTATE1"
NONCE_BYTES = 12
ENV_VAR = "TENANTPULSE_STATE_KEY"


class StateDecryptError(UsageError):
    """The state could not be decrypted: wrong key, tampered or truncated file."""


def parse_key(text: str | bytes, source: str) -> bytes:
    """A 32-byte key given as 64 hex characters or base64 (files may end in a newline)."""
    raw = text.strip() if isinstance(text, bytes) else text.strip().encode()
    for decode in (binascii.unhexlify, base64.b64decode):
        try:
            key = decode(raw)
        except (binascii.Error, ValueError):
            continue
        if len(key) == 32:
            return key
    raise UsageError(f"{source}: state key must be 32 bytes as 64 hex characters or base64")


def load_key(key_file: str | Path | None = None) -> bytes | None:
    """The key from a file, else from $TENANTPULSE_STATE_KEY, else None (state stays unencrypted)."""
    if key_file is not None:
        try:
            return parse_key(Path(key_file).read_bytes(), str(key_file))
        except OSError as exc:
            raise UsageError(f"cannot read state key file {key_file}: {exc.strerror}") from None
    value = os.environ.get(ENV_VAR)
    return parse_key(value, ENV_VAR) if value else None


def new_key_hex() -> str:
    return AESGCM.generate_key(bit_length=256).hex()


class StateCipher:
    """Encrypts and decrypts whole state payloads."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise UsageError("AES-256-GCM needs a 32-byte key")
        self._aead = AESGCM(key)

    def encrypt(self, payload: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return MAGIC + nonce + self._aead.encrypt(nonce, payload, MAGIC)

    def decrypt(self, blob: bytes, source: str = "state") -> bytes:
        if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + NONCE_BYTES + 16:
            raise StateDecryptError(f"{source}: not an encrypted tenantpulse state file")
        nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES :], MAGIC)
        except InvalidTag:
            raise StateDecryptError(f"{source}: cannot decrypt: wrong key, or the file was altered") from None
