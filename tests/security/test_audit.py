"""The audit chain: intact logs verify; altering, removing or inserting an entry is named precisely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tenantpulse.cli import main
from tenantpulse.security.audit import AuditLog, verify


def _log(path: Path, n: int = 5) -> AuditLog:
    log = AuditLog(path)
    for i in range(n):
        log.record(
            actor="ops",
            action="alert.update",
            outcome="ok",
            tenant=f"t{i}",
            target=f"a{i}",
            request_id=f"r{i}",
        )
    return log


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_intact_chain_verifies_and_continues_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    first = _log(path, 3)
    reopened = AuditLog(path)
    assert reopened.head == first.head
    reopened.record(actor="ops", action="tenant.erase", outcome="ok", tenant="t9")
    assert verify(path) == (4, None)
    assert json.loads(_lines(path)[-1])["seq"] == 4


def test_entries_never_hold_a_key(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    AuditLog(path).record(actor="key-1a2b", action="auth.refused", outcome="denied", request_id="r1")
    entry = json.loads(path.read_text())
    assert set(entry) == {
        "seq",
        "time",
        "actor",
        "tenant",
        "action",
        "target",
        "outcome",
        "request_id",
        "prev",
        "hash",
    }


def test_altered_entry_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log(path)
    lines = _lines(path)
    lines[2] = lines[2].replace('"outcome":"ok"', '"outcome":"denied"')
    path.write_text("\n".join(lines) + "\n")
    count, finding = verify(path)
    assert (count, finding.kind, finding.line) == (2, "altered", 3)
    assert "seq=3" in finding.message


def test_removed_entry_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log(path)
    lines = _lines(path)
    del lines[1]
    path.write_text("\n".join(lines) + "\n")
    count, finding = verify(path)
    assert (count, finding.kind) == (1, "removed")
    assert "seq=2" in finding.message


def test_inserted_entry_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log(path)
    lines = _lines(path)
    lines.insert(3, lines[1])  # a replayed copy of an earlier, validly hashed entry
    path.write_text("\n".join(lines) + "\n")
    count, finding = verify(path)
    assert (count, finding.kind, finding.line) == (3, "inserted", 4)


def test_truncated_tail_is_the_limit_of_a_chain(tmp_path: Path) -> None:
    """Dropping the last entries leaves a valid prefix: only an externally kept head catches that."""
    path = tmp_path / "audit.jsonl"
    log = _log(path)
    lines = _lines(path)
    path.write_text("\n".join(lines[:-1]) + "\n")
    count, finding = verify(path)
    assert finding is None and count == 4
    assert json.loads(lines[-2])["hash"] != log.head


def test_cli_verify_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    _log(path)
    assert main(["audit", "verify", str(path)]) == 0
    assert "5 entries" in capsys.readouterr().out
    path.write_text(path.read_text().replace('"tenant":"t4"', '"tenant":"t5"'))
    assert main(["audit", "verify", str(path)]) == 1
    assert "seq=5" in capsys.readouterr().out
    assert main(["audit", "verify", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such audit log" in capsys.readouterr().err
