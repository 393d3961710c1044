"""A real Alertmanager (Debian ``prometheus-alertmanager``) on free loopback ports, clustering off."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import requests

from tests.support.ports import free_port, wait_until
from tests.support.prometheus import require


class Alertmanager:
    """Start with a generated ``alertmanager.yml``; read its alerts over the v2 API."""

    def __init__(self, workdir: Path, config_file: Path) -> None:
        self.workdir = workdir
        self.config_file = config_file
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.target}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Alertmanager:
        binary = require("prometheus-alertmanager")
        self.log_path = self.workdir / "alertmanager.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={self.config_file}",
                f"--storage.path={self.workdir / 'am-data'}",
                f"--web.listen-address={self.target}",
                "--cluster.listen-address=",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"alertmanager exited:\n{self.log_path.read_text()}")
            return requests.get(f"{self.url}/-/ready", timeout=1).ok

        wait_until(ready, what="alertmanager ready")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
            self._log.close()

    def __enter__(self) -> Alertmanager:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def alerts(self) -> list[dict[str, Any]]:
        r = requests.get(f"{self.url}/api/v2/alerts", timeout=5)
        r.raise_for_status()
        return r.json()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
