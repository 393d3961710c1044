"""A rerun of ``tenantpulse demo`` says it resumes the sidecar's models; ``--fresh`` removes what earlier
runs saved, and the warm-up counts down to the spike."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tenantpulse.demo.context import DemoContext
from tenantpulse.demo.sidecar import CALM_SAMPLES, SidecarComponent, countdown
from tests.support.prometheus import require
from tests.support.shared import REPO

RESUMING = "resuming the sidecar's models from demo/sidecar.state; --fresh starts over"


def demo(cwd: Path, *extra: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tenantpulse.cli", "demo", "--workdir", "demo", "--duration", "8",
         "--exporter-port", "0", "--prometheus-port", "0", *extra],
        cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def sidecar_notes(workdir: Path) -> list[str]:
    args = argparse.Namespace(workdir="demo", scrape_interval="1s", misbehave=None)
    ctx = DemoContext(workdir=workdir, args=args, values={"prometheus_url": "http://127.0.0.1:9"})
    SidecarComponent().prepare(ctx)
    return ctx.notes


def test_a_saved_state_is_announced_and_nothing_else(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    workdir.mkdir()
    assert RESUMING not in sidecar_notes(workdir)
    assert any("models warm up for ~3.3 min" in note for note in sidecar_notes(workdir))
    (workdir / "sidecar.state").write_bytes(b"saved by an earlier run")
    notes = sidecar_notes(workdir)
    assert RESUMING in notes and not any("warm up" in note for note in notes)


def test_countdown_line() -> None:
    assert countdown(50, 1.0, "acme") == (
        f"  [sidecar] warming up: 50/{CALM_SAMPLES} samples per series; spike into acme in ~150s"
    )
    assert countdown(CALM_SAMPLES + 5, 15.0, "acme").endswith("in ~0s")


@pytest.mark.integration
def test_fresh_removes_the_saved_state_and_a_rerun_resumes(tmp_path: Path) -> None:
    require("prometheus")
    require("prometheus-alertmanager")
    workdir = tmp_path / "demo"
    (workdir / "prometheus-data").mkdir(parents=True)
    (workdir / "alerting" / "alertmanager-data").mkdir(parents=True)
    (workdir / "sidecar.state").write_bytes(b"models of an earlier run")
    keys = workdir / "exporter-keys.yaml"
    keys.write_text("keys: []\n")  # not state: rewritten by every run

    out = demo(tmp_path, "--fresh")
    removed = [
        workdir / "alerting" / "alertmanager-data",
        workdir / "prometheus-data",
        workdir / "sidecar.state",
    ]
    assert f"--fresh: removed {', '.join(map(str, removed))}\n" in out
    assert keys.read_text() != "keys: []\n"
    assert RESUMING not in out
    warming = re.search(
        r"\[sidecar\] warming up: (\d+)/200 samples per series; spike into acme in ~(\d+)s", out
    )
    assert warming, out
    assert int(warming.group(2)) > 150  # the models start over: minutes away, not seconds
    assert b"earlier run" not in (workdir / "sidecar.state").read_bytes()  # saved anew at the end

    assert RESUMING in demo(tmp_path)
