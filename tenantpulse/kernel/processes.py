"""Child processes that serve HTTP: started until a URL answers, stopped with SIGTERM then SIGKILL.

The demo and the tests run the real exporter, sidecar, Prometheus and Alertmanager this way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import requests

from tenantpulse.kernel.errors import UsageError

# The folder that holds the ``tenantpulse`` package: the checkout, or site-packages when installed.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def python_env(**extra: str) -> dict[str, str]:
    """This environment with the checkout importable, for ``python -m tenantpulse.cli`` children."""
    path = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def tenantpulse_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tenantpulse.cli", *args]


class ChildProcess:
    """One child with its output appended to ``log_path``."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, ready_url: str, timeout: float = 60.0) -> None:
        """Start, then wait for ``ready_url`` to answer 200; a child that dies or never answers is stopped
        and reported with the end of its log."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        try:
            self._wait_ready(ready_url, timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise UsageError(f"{self.name} exited with {self.proc.returncode}; {self._log_tail()}")
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise UsageError(f"{self.name}: {url} not ready after {timeout:.0f}s; {self._log_tail()}")

    def _log_tail(self, lines: int = 15) -> str:
        try:
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return f"see {self.log_path}"
        return f"end of {self.log_path}:\n" + "\n".join(tail)

    def signal(self, signum: int) -> None:
        if self.proc is not None:
            self.proc.send_signal(signum)

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
