"""The audit chain: intact logs verify; altering, removing or inserting an entry is named precisely."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO

import pytest
from structlog.testing import capture_logs

from tenantpulse.cli import main
from tenantpulse.kernel.processes import python_env, tenantpulse_command
from tenantpulse.security import audit as audit_module
from tenantpulse.security.audit import AuditLog, verify
from tests.support.exporter import write_keys_file


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


def test_a_torn_last_line_is_reported_as_torn_not_tampering(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A write cut short (a full disk, a crash) leaves half a line: that is not tampering."""
    path = tmp_path / "audit.jsonl"
    _log(path, 3)
    with path.open("a") as fh:
        fh.write('{"action":"tenant.erase","actor":"ops","det')
    count, finding = verify(path)
    assert finding is not None and (count, finding.kind, finding.line) == (3, "torn", 4)
    assert main(["audit", "verify", str(path)]) == 3
    out = capsys.readouterr().out
    assert out.startswith("TORN: torn last line (line 4") and "TAMPERED" not in out
    assert "3 entries before it are intact" in out


def test_a_torn_last_line_is_set_aside_at_start_and_the_chain_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    first = _log(path, 3)
    head = first.head
    torn = b'{"action":"alert.update","actor":"ops","outco'
    with path.open("ab") as fh:
        fh.write(torn)
    with capture_logs() as logs:
        reopened = _reopen(path)  # another process's view: what a restarted server does
    assert reopened == head
    assert (tmp_path / "audit.jsonl.torn").read_bytes() == torn + b"\n"
    assert any(
        e["event"].startswith("audit log had a torn last line") and e["bytes"] == len(torn) for e in logs
    )
    AuditLog(path).record(actor="ops", action="tenant.erase", outcome="ok")
    assert verify(path) == (4, None)


def _reopen(path: Path) -> str:
    """The head as a new AuditLog sees it: drop this process's lock on ``path`` so it reads afresh."""
    key = path.resolve()
    held = audit_module._HELD.pop(key, None)
    if held is not None:
        held.close()
    return AuditLog(path).head


@pytest.mark.parametrize(
    ("bad", "why"),
    [(b'{"seq": 3, "actor": "\xff\xfe"}', "not UTF-8 (byte 22)"), (b"[" * 200_000, "nested too deeply")],
)
def test_verify_names_an_unreadable_line_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: bytes, why: str
) -> None:
    path = tmp_path / "audit.jsonl"
    _log(path, 4)
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(2, bad + b"\n")
    path.write_bytes(b"".join(lines))
    assert main(["audit", "verify", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == f"TAMPERED: line 3 is not an audit entry ({why}) (2 entries verified before it)\n"
    assert err == ""


class FullDisk:
    """A file whose writes store a few bytes, then fail as a full disk does."""

    def __init__(self, real: BinaryIO) -> None:
        self.real = real

    def fileno(self) -> int:
        return self.real.fileno()

    def write(self, data: bytes | memoryview) -> int:
        self.real.write(bytes(data[:10]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_leaves_no_half_line_and_the_log_resumes(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = _log(path, 2)
    before = path.read_bytes()
    real = log._fh
    log._fh = FullDisk(real)  # type: ignore[assignment]
    with pytest.raises(OSError) as raised:
        log.record(actor="ops", action="tenant.erase", outcome="ok", tenant="t1")
    assert raised.value.errno == errno.ENOSPC
    assert path.read_bytes() == before  # the half line is undone
    assert log.failure == os.strerror(errno.ENOSPC) and not log.available()
    log._fh = real  # space is free again
    assert log.available()
    last = json.loads(_lines(path)[-1])
    assert (last["action"], last["detail"]["entries_not_recorded"]) == ("audit.resumed", 1)
    assert log.failure is None and verify(path) == (3, None)


def test_a_second_process_cannot_write_the_same_log(tmp_path: Path) -> None:
    """Two writers would fork the chain: the second server stops at start, one line, exit 2."""
    path = tmp_path / "audit.jsonl"
    keys = tmp_path / "keys.yaml"
    write_keys_file(keys, ["t1"])
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=python_env(),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        second = subprocess.run(
            tenantpulse_command("exporter", "--api-keys", str(keys), "--audit-log", str(path), "--port", "1"),
            capture_output=True,
            text=True,
            env=python_env(),
            timeout=120,
        )
    finally:
        holder.communicate(b"")
    assert second.returncode == 2, second.stderr
    assert len(second.stderr.strip().splitlines()) == 1 and "Traceback" not in second.stderr
    assert "is in use by another process" in second.stderr
    assert verify(path) == (1, None)


HOLD = """
import sys
from tenantpulse.security.audit import AuditLog
log = AuditLog(sys.argv[1])
log.record(actor="first", action="tenant.erase", outcome="ok")
print("held", flush=True)
sys.stdin.read()
"""
