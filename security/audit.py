"""An append-only, hash-chained JSON-lines audit log.

Each entry carries the hash of the one before it, so editing, removing or inserting a line breaks the
chain at that point and ``verify`` names it. The chain proves integrity relative to its head: keep a copy
of the last hash elsewhere (the log prints it on every write) to detect a rewrite of the whole file.

One process writes one file: ``AuditLog`` holds an exclusive lock on it for the life of the process, so
a second server pointed at the same file stops at start (``AuditLogBusy``, a one-line ``UsageError``)
instead of forking the chain. A last line cut short by a crash or a full disk is *torn*, not tampered
with: at start it is moved to ``<file>.torn`` and logged, and ``verify`` reports it as such. A failed
write (e.g. ``ENOSPC``) is undone (the file is cut back to its last whole line), raised as ``OSError``
and remembered in ``failure`` until a write succeeds again (see ``available``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import structlog

from tenantpulse.kernel.errors import UsageError

log = structlog.get_logger("tenantpulse.audit")

GENESIS = "0" * 64
FIELDS = ("seq", "time", "actor", "tenant", "action", "target", "outcome", "request_id", "prev")

# Locked files of this process: path -> the open file holding the lock. Another AuditLog on the same
# file in the same process (a test, a reopen) shares it; another process is refused.
_HELD: dict[Path, BinaryIO] = {}
_HELD_LOCK = threading.Lock()


class AuditLogBusy(UsageError):
    """Another process holds the audit log: two writers would fork the chain."""


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of every field but ``hash`` itself."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _parse(raw: bytes) -> tuple[Any, str | None]:
    """(document, None), or (None, why the line is unreadable). Never raises."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {exc.start + 1})"
    try:
        return json.loads(text), None
    except RecursionError:
        return None, "nested too deeply"
    except ValueError:
        return None, "not JSON"


def _lock(path: Path) -> BinaryIO:
    key = path.resolve()
    with _HELD_LOCK:
        held = _HELD.get(key)
        if held is not None and not held.closed:
            return held
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = path.open("ab", buffering=0)
        except OSError as exc:
            raise UsageError(f"audit log {path}: cannot open it ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise AuditLogBusy(
                f"audit log {path} is in use by another process; give each server its own --audit-log"
            ) from None
        _HELD[key] = fh
        return fh


class AuditLog:
    """Appends chained entries; safe to share between threads of one process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fh: BinaryIO = _lock(self.path)
        self.failure: str | None = None  # why the last write failed; None while writes succeed
        self.lost = 0  # entries that could not be written since the last successful write
        self._seq, self._head = self._tail()

    def _tail(self) -> tuple[int, str]:
        size, start, last, ends_with_newline = self._last_line()
        if not last:
            return 0, GENESIS
        entry, why = _parse(last)
        if why is not None:  # torn: cut back to the last whole line, keep the torn bytes beside it
            side = self.path.with_name(self.path.name + ".torn")
            with self.path.open("rb") as src, side.open("ab") as dst:
                src.seek(start)
                torn = src.read()
                dst.write(torn if torn.endswith(b"\n") else torn + b"\n")
            os.truncate(self.path, start)
            log.warning(
                "audit log had a torn last line; moved it aside and continued the chain before it",
                path=str(self.path),
                bytes=size - start,
                moved_to=str(side),
                reason=why,
            )
            return self._tail()
        if not isinstance(entry, dict) or not all(f in entry for f in (*FIELDS, "hash")):
            raise UsageError(
                f"audit log {self.path}: the last line is not an audit entry "
                f"(check it with: tenantpulse audit verify {self.path})"
            )
        if not ends_with_newline:
            self._fh.write(b"\n")
        try:
            return int(entry["seq"]), str(entry["hash"])
        except (TypeError, ValueError):
            raise UsageError(f"audit log {self.path}: the last entry has no valid seq") from None

    def _last_line(self, chunk: int = 64 * 1024) -> tuple[int, int, bytes, bool]:
        """(file size, offset of the last non-blank line, that line without trailing blanks, whether the
        file ends with a newline), read backwards from the end: a long log is not read whole."""
        with self.path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            tail, pos = b"", size
            while pos > 0:
                step = min(chunk, pos)
                pos -= step
                fh.seek(pos)
                tail = fh.read(step) + tail
                body = tail.rstrip(b"\r\n\t ")
                if body and b"\n" in body:
                    break
            body = tail.rstrip(b"\r\n\t ")
            cut = body.rfind(b"\n") + 1
            return size, pos + cut, body[cut:], tail.endswith(b"\n")

    @property
    def head(self) -> str:
        return self._head

    def available(self) -> bool:
        """True when the log can be written. After a failure, tries again: a successful write records
        ``audit.resumed`` with how many entries were lost meanwhile."""
        if self.failure is None:
            return True
        try:
            self.record(
                actor="tenantpulse",
                action="audit.resumed",
                outcome="ok",
                entries_not_recorded=self.lost,
                after=self.failure,
            )
        except OSError:
            self.lost -= 1  # the probe itself is no lost entry
            return False
        return True

    def record(
        self,
        *,
        actor: str,
        action: str,
        outcome: str,
        tenant: str | None = None,
        target: str | None = None,
        request_id: str | None = None,
        **detail: Any,
    ) -> dict[str, Any]:
        """Write one entry. ``actor`` is a key id, never a key. A failed write raises ``OSError``."""
        with self._lock:
            entry: dict[str, Any] = {
                "seq": self._seq + 1,
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "actor": actor,
                "tenant": tenant,
                "action": action,
                "target": target,
                "outcome": outcome,
                "request_id": request_id,
                "prev": self._head,
            }
            if detail:
                entry["detail"] = detail
            entry["hash"] = entry_hash(entry)
            self._append((json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode())
            self._seq, self._head = entry["seq"], entry["hash"]
            self.failure, self.lost = None, 0
            return entry

    def _append(self, line: bytes) -> None:
        size = os.fstat(self._fh.fileno()).st_size
        try:
            view = memoryview(line)
            while view:
                written = self._fh.write(view)
                if not written:
                    raise OSError(f"short write to {self.path}")
                view = view[written:]
        except OSError as exc:
            self.failure = exc.strerror or str(exc)
            self.lost += 1
            with contextlib.suppress(OSError):  # leave no half line (else the next start sets it aside)
                os.ftruncate(self._fh.fileno(), size)
            raise


@dataclass(frozen=True)
class Finding:
    """The first place the chain breaks: line number (1-based), what happened, and why we think so."""

    line: int
    kind: str  # "altered" | "removed" | "inserted" | "unreadable" | "torn"
    message: str


def _entries(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None, bool]]:
    """(line number, entry or None, why unreadable, whether it is the last line) for non-blank lines."""
    with path.open("rb") as fh:
        pending: tuple[int, bytes] | None = None
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            if pending is not None:
                yield _entry(*pending, last=False)
            pending = (number, raw)
        if pending is not None:
            yield _entry(*pending, last=True)


def _entry(number: int, raw: bytes, *, last: bool) -> tuple[int, dict[str, Any] | None, str | None, bool]:
    doc, why = _parse(raw)
    if why is None and not isinstance(doc, dict):
        why = "not an object"
    return number, doc if why is None else None, why, last


def verify(path: str | Path) -> tuple[int, Finding | None]:
    """Check the whole chain; returns (entries checked, first finding or None)."""
    expected_seq, prev = 1, GENESIS
    count = 0
    for number, entry, why, last in _entries(Path(path)):
        if entry is None and last:
            return count, Finding(
                number,
                "torn",
                f"torn last line (line {number}, {why}): a write cut short, e.g. by a full disk",
            )
        if entry is None or not all(f in entry for f in (*FIELDS, "hash")):
            return count, Finding(
                number, "unreadable", f"line {number} is not an audit entry ({why or 'fields missing'})"
            )
        seq = entry["seq"]
        try:
            intact = entry_hash(entry) == entry["hash"]
        except (RecursionError, ValueError, TypeError):
            return count, Finding(
                number, "unreadable", f"line {number} is not an audit entry (nested too deeply)"
            )
        if not intact:
            return count, Finding(
                number,
                "altered",
                f"entry seq={seq} (line {number}) was altered: its hash does not match its content",
            )
        if entry["prev"] != prev or seq != expected_seq or not isinstance(seq, int):
            if isinstance(seq, int) and seq > expected_seq:
                missing = f"seq={expected_seq}" + (f"..{seq - 1}" if seq - 1 > expected_seq else "")
                return count, Finding(number, "removed", f"entry {missing} was removed before line {number}")
            return count, Finding(
                number,
                "inserted",
                f"entry at line {number} (seq={seq}) was inserted or reordered: expected seq={expected_seq}",
            )
        expected_seq, prev = seq + 1, entry["hash"]
        count += 1
    return count, None
