"""What the demo's components share: the context they fill in, their protocol, ports and child processes."""

from __future__ import annotations

import argparse
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tenantpulse.kernel.processes import ChildProcess

TENANTS = ("acme", "globex", "initech")


@dataclass
class DemoContext:
    """What components share: where files go, who listens where, what Prometheus should load."""

    workdir: Path
    args: argparse.Namespace
    tenants: tuple[str, ...] = TENANTS
    keys: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)  # printed at start, in insertion order
    notes: list[str] = field(default_factory=list)  # extra lines printed after the URLs
    scrape_configs: list[dict[str, Any]] = field(default_factory=list)
    rule_files: list[str] = field(default_factory=list)
    alertmanagers: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)  # anything else components hand each other


class Component(Protocol):
    name: str

    def prepare(self, ctx: DemoContext) -> None: ...
    def start(self, ctx: DemoContext) -> None: ...
    def stop(self) -> None: ...


def pick_port(preferred: int) -> int:
    """``preferred`` if it is free on loopback (0: any free port)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child(name: str, command: list[str], ctx: DemoContext, env: dict[str, str] | None = None) -> ChildProcess:
    """A demo process logging to ``<workdir>/logs/<name>.log``."""
    return ChildProcess(name, command, ctx.workdir / "logs" / f"{name}.log", env=env)
