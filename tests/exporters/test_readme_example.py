"""The README's exporter example works when pasted: its shell block, run as it stands against a real
exporter (only the port changed to a free one), creates a key, the keys file, and ingests an event."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.shared import REPO

pytestmark = pytest.mark.integration


def readme_block(heading: str) -> str:
    """The first ``sh`` block after ``heading`` in README.md."""
    text = (REPO / "README.md").read_text()
    after = text[text.index(f"\n{heading}\n") :]
    match = re.search(r"```sh\n(.*?)```", after, re.S)
    assert match, f"no sh block after {heading}"
    return match.group(1)


def test_the_exporter_example_runs_as_pasted(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("needs curl")
    block = readme_block("## The exporter and its ingest API")
    assert "9464" in block and "$KEY" in block
    bin_dir = tmp_path / "bin"  # `tenantpulse` on PATH: this checkout's
    bin_dir.mkdir()
    shim = bin_dir / "tenantpulse"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m tenantpulse.cli "$@"\n')
    shim.chmod(0o755)
    script = (
        "set -eu\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"  # the exporter it starts ends with it
        + block.replace("9464", str(free_port()))
    )
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok: 1 key in keys.yaml\n" in run.stdout
    assert '"accepted_events":1' in run.stdout, run.stdout + run.stderr
    assert (tmp_path / "keys.yaml").read_text().startswith("keys:\n  - {id: ")
