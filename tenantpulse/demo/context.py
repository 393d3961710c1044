"""What the demo's components share: the context they fill in, their protocol, ports and child processes."""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import threading
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
    running: threading.Event = field(default_factory=threading.Event)  # set once the URLs are printed


class Component(Protocol):
    """``stop`` is called for every component whose ``prepare`` returned, started or not (startup may be
    interrupted anywhere), so it must cope with a partial start. ``saved`` names what the component keeps
    in the work directory from one run to the next (``--fresh`` removes it)."""

    name: str
    saved: tuple[str, ...]

    def prepare(self, ctx: DemoContext) -> None: ...
    def start(self, ctx: DemoContext) -> None: ...
    def stop(self) -> None: ...


_OUTPUT = threading.Lock()


def say(line: str) -> None:
    """One line of output from any of the demo's threads (sinks, sidecar), never run into another's:
    ``print`` writes the text and its newline separately."""
    with _OUTPUT:
        print(line, flush=True)


def pick_port(preferred: int) -> int:
    """``preferred`` if it is free on loopback (0: any free port)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parent_death_guard() -> list[str]:
    """A prefix that has Linux send the child SIGTERM when the demo dies (``PR_SET_PDEATHSIG``, set by
    util-linux's ``setpriv`` just before it execs the command; exec keeps it).

    The children run in sessions of their own, so that a terminal's Ctrl-C reaches only the demo, which
    stops them in order (the sidecar before the Prometheus it reads). Then nothing else ends them if the
    demo is killed (SIGKILL, a closed terminal's SIGHUP) or loses track of one (a signal between fork and
    bookkeeping): this guard does. The signal follows the death of the thread that started the child;
    the demo starts them all from its main thread, which lives as long as the demo. Without ``setpriv``
    (not Linux) there is no guard, and the demo's own stop is the only one.
    """
    if sys.platform != "linux" or shutil.which("setpriv") is None:
        return []
    return ["setpriv", "--pdeathsig", "TERM", "--"]


def child(name: str, command: list[str], ctx: DemoContext, env: dict[str, str] | None = None) -> ChildProcess:
    """A demo process logging to ``<workdir>/logs/<name>.log``, ended with the demo whatever happens."""
    return ChildProcess(
        name, [*parent_death_guard(), *command], ctx.workdir / "logs" / f"{name}.log", env=env
    )
