"""An append-only, hash-chained JSON-lines audit log.

Each entry carries the hash of the one before it, so editing, removing or inserting a line breaks the
chain at that point and ``verify`` names it. The chain proves integrity relative to its head: keep a copy
of the last hash elsewhere (the log prints it on every write) to detect a rewrite of the whole file.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
FIELDS = ("seq", "time", "actor", "tenant", "action", "target", "outcome", "request_id", "prev")


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of every field but ``hash`` itself."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class AuditLog:
    """Appends chained entries; safe to share between threads of one process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._seq, self._head = self._tail()

    def _tail(self) -> tuple[int, str]:
        if not self.path.exists():
            return 0, GENESIS
        last = None
        with self.path.open("rb") as fh:
            for line in fh:
                if line.strip():
                    last = line
        if last is None:
            return 0, GENESIS
        entry = json.loads(last)
        return int(entry["seq"]), str(entry["hash"])

    @property
    def head(self) -> str:
        return self._head

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
        """Write one entry. ``actor`` is a key id, never a key."""
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
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n")
            self._seq, self._head = entry["seq"], entry["hash"]
            return entry


@dataclass(frozen=True)
class Finding:
    """The first place the chain breaks: line number (1-based), what happened, and why we think so."""

    line: int
    kind: str  # "altered" | "removed" | "inserted" | "unreadable"
    message: str


def _entries(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    with path.open("r", encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                yield number, None
                continue
            yield number, entry if isinstance(entry, dict) else None


def verify(path: str | Path) -> tuple[int, Finding | None]:
    """Check the whole chain; returns (entries checked, first finding or None)."""
    expected_seq, prev = 1, GENESIS
    count = 0
    for number, entry in _entries(Path(path)):
        if entry is None or not all(f in entry for f in (*FIELDS, "hash")):
            return count, Finding(number, "unreadable", f"line {number} is not an audit entry")
        seq = entry["seq"]
        if entry_hash(entry) != entry["hash"]:
            return count, Finding(
                number,
                "altered",
                f"entry seq={seq} (line {number}) was altered: its hash does not match its content",
            )
        if entry["prev"] != prev or seq != expected_seq:
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
