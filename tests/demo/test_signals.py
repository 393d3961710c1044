"""``tenantpulse demo`` ends every child it started, however it is told to stop: two Ctrl-C in a row (or
``timeout``, which signals twice), SIGTERM during the stop, or the demo itself killed outright."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.ports import wait_until
from tests.support.prometheus import require
from tests.support.shared import REPO

pytestmark = pytest.mark.integration

CHILDREN = 6  # exporter, Alertmanager, Prometheus, query gateway, sidecar, live dashboards


class Demo:
    """The demo as a subprocess, its output collected line by line as it comes."""

    def __init__(self, workdir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tenantpulse.cli", "demo", "--workdir", str(workdir),
             "--exporter-port", "0", "--prometheus-port", "0", "--scrape-interval", "1s"],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self.kids: list[psutil.Process] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def children(self) -> list[psutil.Process]:
        """Once the demo says it is running: the processes it started."""
        wait_until(lambda: "tenantpulse demo is running" in self.output, timeout=120, what="the demo")
        self.kids = psutil.Process(self.proc.pid).children()
        assert len(self.kids) == CHILDREN, [k.cmdline() for k in self.kids]
        return self.kids

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    require("prometheus")
    require("prometheus-alertmanager")
    started = Demo(tmp_path / "demo")
    try:
        yield started
    finally:
        started.kill()
        for kid in started.kids:  # a failed test leaves no orphans behind either
            with contextlib.suppress(psutil.NoSuchProcess):
                kid.kill()


def survivors(kids: list[psutil.Process], within: float) -> list[str]:
    """The children still running (not merely unreaped) after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        alive = []
        for kid in kids:
            try:
                if kid.is_running() and kid.status() != psutil.STATUS_ZOMBIE:
                    alive.append(" ".join(kid.cmdline()[:4]))
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def test_two_interrupts_still_stop_every_child(demo: Demo) -> None:
    kids = demo.children()
    demo.proc.send_signal(signal.SIGINT)
    wait_until(lambda: "stopping ..." in demo.output, timeout=10, what="the demo to begin stopping")
    demo.proc.send_signal(signal.SIGINT)  # while it stops the sidecar, which saves its models
    time.sleep(0.3)
    demo.proc.send_signal(signal.SIGTERM)
    assert demo.wait(60) == 0, demo.output
    assert "demo stopped" in demo.output
    assert not survivors(kids, within=30), demo.output


def test_children_end_when_the_demo_is_killed(demo: Demo) -> None:
    kids = demo.children()
    demo.proc.kill()  # no stop of its own: the parent-death guard ends them
    demo.wait(10)
    assert not survivors(kids, within=30), demo.output
