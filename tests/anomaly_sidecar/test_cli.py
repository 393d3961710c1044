"""``tenantpulse sidecar`` refuses bad input with a message and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tenantpulse.cli import main

URL = ["--prometheus-url", "http://127.0.0.1:9"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prometheus-url", "localhost:9090"], "must start with http"),
        ([*URL, "--interval", "5x"], "invalid duration '5x'"),
        ([*URL, "--sensitivity", "extreme"], "choose one of low, medium, high"),
        ([*URL, "--shard-index", "2", "--shard-count", "2"], "--shard-index must be in [0, 1]"),
        ([*URL, "--indicators", "request_rate,bogus"], "--indicators: unknown ['bogus']"),
        ([*URL, "--confidence", "1.5"], "--confidence"),
        ([*URL, "--basic-auth-file", "/nonexistent/auth"], "--basic-auth-file: cannot read"),
        ([*URL, "--api-keys", "/nonexistent/keys.yaml"], "cannot read keys file"),
    ],
)
def test_bad_flags_exit_2_with_a_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sidecar", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_basic_auth_file_needs_user_and_password(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "auth"
    f.write_text("just-a-password\n")
    assert main(["sidecar", *URL, "--basic-auth-file", str(f)]) == 2
    assert "'user:password'" in capsys.readouterr().err


def test_foreign_state_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    """The real entry point: a --state-file that is not ours stops the start; the file is not touched."""
    state = tmp_path / "important.txt"
    state.write_text("not yours")
    run = subprocess.run(
        [sys.executable, "-m", "tenantpulse.cli", "sidecar", *URL, "--state-file", str(state), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert run.returncode == 2, run.stderr
    assert "not a tenantpulse state file" in run.stderr and "Traceback" not in run.stderr
    assert state.read_text() == "not yours"
