"""The sidecar's learned state on disk: written atomically, read back at start.

A crash mid-write must never leave a half file where the last good one was, so ``save`` writes a
temporary file in the same directory, fsyncs it, ``os.replace``s it over the target and fsyncs the
directory. The bytes pass through a pluggable ``Codec`` (plain today; the security work can plug in
AES-GCM without touching the sidecar), and a small header names the codec so a file written with
one codec is never silently misread with another.

``pack``/``unpack`` turn named numpy arrays plus JSON metadata into one payload (``.npz``, no pickle).

Two kinds of unusable file: ``StateError`` (not ours, another codec, a wrong key: the caller refuses to
start and leaves the file alone) and its subclass ``DamagedStateError`` (ours, but its bytes are broken:
no key or version could read it, so the caller may set it aside and start fresh). A save killed before
its rename leaves its temporary file behind; ``remove_leftovers`` clears those at the next start.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np

MAGIC = b"TPSIDECAR1"
_META_KEY = "__meta__"


class StateError(Exception):
    """The state file exists but cannot be used (corrupt, wrong codec, wrong format)."""


class DamagedStateError(StateError):
    """The state file is ours but its bytes are broken (truncated, altered): nothing could read it."""


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
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=_TMP_SUFFIX, dir=path.parent)
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


_TMP_SUFFIX = ".tmp"


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


def leftovers(path: str | Path) -> list[Path]:
    """Temporary files of saves of ``path`` that never reached their rename (the saver was killed).

    Only names ``save`` itself makes (``mkstemp``: the prefix, 8 random characters, the suffix), in
    ``path``'s own directory: other files, and the temporary files of other state files, are not ours."""
    path = Path(path)
    pattern = re.compile(re.escape(_tmp_prefix(path)) + r"[a-z0-9_]{8}" + re.escape(_TMP_SUFFIX))
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    found = [path.parent / n for n in names if pattern.fullmatch(n)]
    return sorted(p for p in found if p.is_file() and not p.is_symlink())


def remove_leftovers(path: str | Path) -> list[tuple[Path, int]]:
    """Delete ``leftovers(path)``; returns each removed file with its size."""
    removed = []
    for tmp in leftovers(path):
        try:
            size = tmp.stat().st_size
            tmp.unlink()
        except FileNotFoundError:
            continue
        removed.append((tmp, size))
    return removed


def load(path: str | Path, codec: Codec = PLAIN) -> bytes | None:
    """The payload saved at ``path``, or None when there is no file yet."""
    try:
        blob = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    if len(blob) <= len(MAGIC) and MAGIC.startswith(blob):  # empty, or cut inside the magic
        raise DamagedStateError(f"{path}: truncated state file ({len(blob)} bytes)")
    if not blob.startswith(MAGIC):
        raise StateError(f"{path}: not a tenantpulse state file")
    n = blob[len(MAGIC)]
    if len(blob) < len(MAGIC) + 1 + n:
        raise DamagedStateError(f"{path}: truncated state file (cut inside the header)")
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
    except Exception as exc:  # noqa: BLE001 - zipfile.BadZipFile, EOFError, ...: any failure is damage
        raise DamagedStateError(f"state payload is corrupt: {type(exc).__name__}: {exc}") from None
    return arrays, meta
