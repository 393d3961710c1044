"""Run the real validators (promtool, amtool) on generated files; their output becomes the error message."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tenantpulse.kernel.errors import UsageError


class CheckFailed(UsageError):
    """promtool/amtool refused a generated file (usually a raw ``expr`` in the spec)."""


def _run(tool: str, *args: str, cwd: Path | None = None) -> str:
    binary = shutil.which(tool)
    if binary is None:
        raise CheckFailed(f"{tool} not found on PATH (apt-get install prometheus prometheus-alertmanager)")
    proc = subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, cwd=cwd)
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise CheckFailed(f"{tool} {args[0]} {args[1] if len(args) > 1 else ''} failed:\n{output}")
    return output


def check_rules(path: Path) -> str:
    return _run("promtool", "check", "rules", str(path))


def test_rules(path: Path) -> str:
    """promtool resolves the test file's ``rule_files`` relative to the test file."""
    return _run("promtool", "test", "rules", str(path))


def check_alertmanager(path: Path) -> str:
    return _run("amtool", "check-config", str(path))
