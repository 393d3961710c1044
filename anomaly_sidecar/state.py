"""The sidecar's learned state on disk: written atomically, read back at start.

A crash mid-write must never leave a half file where the last good one was, so ``save`` writes a
temporary file in the same directory, fsyncs it, ``os.replace``s it over the target and fsyncs the
directory. The bytes pass through a pluggable ``Codec`` (plain today; the security work can plug in
AES-GCM without touching the sidecar), and a small header names the codec so a file written with
one codec is never silently misread with another.

``pack``/``unpack`` turn named numpy arrays plus JSON metadata into one payload (``.npz``, no pickle).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np

MAGIC = b"TPSIDECAR1"
_META_KEY = "__meta__"


class StateError(Exception):
    """The state file exists but cannot be used (corrupt, wrong codec, wrong format)."""


class Codec(Protocol):
    """Transforms the payload on its way to and from disk (e.g. encryption)."""

    name: str

    def encode(self, data: bytes) -> bytes: ...

    def decode(self, data: bytes) -> bytes: ...


class PlainCodec:
    """Stores the payload as is."""

    name = "plain"

    def encode(self, data: bytes) -> bytes:
        return data

    def decode(self, data: bytes) -> bytes:
        return data


PLAIN = PlainCodec()


class CipherCodec:
    """Adapts an ``encrypt``/``decrypt`` object (``security.state_crypto.StateCipher``) to a codec."""

    name = "aes-256-gcm"

    def __init__(self, cipher: Any) -> None:
        self._cipher = cipher

    def encode(self, data: bytes) -> bytes:
        return self._cipher.encrypt(data)

    def decode(self, data: bytes) -> bytes:
        return self._cipher.decrypt(data)


def save(path: str | Path, payload: bytes, codec: Codec = PLAIN) -> None:
    """Atomically replace ``path`` with ``payload`` (through ``codec``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = codec.name.encode()
    blob = MAGIC + len(name).to_bytes(1, "big") + name + codec.encode(payload)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load(path: str | Path, codec: Codec = PLAIN) -> bytes | None:
    """The payload saved at ``path``, or None when there is no file yet."""
    try:
        blob = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 1:
        raise StateError(f"{path}: not a tenantpulse state file")
    n = blob[len(MAGIC)]
    name = blob[len(MAGIC) + 1 : len(MAGIC) + 1 + n].decode(errors="replace")
    if name != codec.name:
        raise StateError(f"{path}: written with codec {name!r}, but reading with {codec.name!r}")
    try:
        return codec.decode(blob[len(MAGIC) + 1 + n :])
    except Exception as exc:  # noqa: BLE001 - any codec failure means the file is unusable
        raise StateError(f"{path}: cannot decode with codec {name!r}: {exc}") from None


# The metadata's slot, and ``np.savez``'s own parameters: an array named ``allow_pickle`` would be taken
# for the flag and silently left out of the file, one named ``file`` would be a TypeError.
_RESERVED = (_META_KEY, "file", "allow_pickle")


def pack(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> bytes:
    """Arrays and JSON metadata as one ``.npz`` payload."""
    for name in _RESERVED:
        if name in arrays:
            raise ValueError(f"array name {name!r} is reserved")
    buf = io.BytesIO()
    meta_bytes = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(buf, allow_pickle=False, **arrays, **{_META_KEY: meta_bytes})
    return buf.getvalue()


def unpack(payload: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Inverse of ``pack``."""
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(arrays.pop(_META_KEY).tobytes().decode())
    except (ValueError, KeyError, OSError) as exc:
        raise StateError(f"state payload is corrupt: {exc}") from None
    return arrays, meta
