"""The demo stack: the whole stack on loopback with embedded defaults.

Exporter, synthetic traffic for three tenants, Prometheus with the generated alert rules, Alertmanager
delivering to local Slack/SMTP sinks, and the anomaly sidecar. The demo is an ordered list of
components. Each one first ``prepare``s (claims ports, adds scrape jobs, rule files or Alertmanager
targets to the shared context), then all ``start`` in order, and they ``stop`` in reverse order on
Ctrl-C, SIGTERM or when ``--duration`` runs out, however many signals follow (``StopSignals``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

from tenantpulse.conventions import catalog as c
from tenantpulse.demo.alerting import AlertingComponent
from tenantpulse.demo.context import TENANTS, Component, DemoContext
from tenantpulse.demo.dashboards import DashboardsComponent
from tenantpulse.demo.exporter import ExporterComponent, TrafficComponent, misbehaviour
from tenantpulse.demo.gateway import GatewayComponent
from tenantpulse.demo.prometheus import PrometheusComponent
from tenantpulse.demo.sidecar import SidecarComponent
from tenantpulse.kernel.durations import is_prometheus_duration, parse_duration
from tenantpulse.kernel.errors import UsageError

# The demo's parts, in start order (stopped in reverse). Alerting adds the rule file and Alertmanager
# target Prometheus starts with; the gateway and the sidecar need Prometheus running; the live dashboards
# read through the gateway.
COMPONENTS: list[Callable[[], Component]] = [
    ExporterComponent,
    TrafficComponent,
    AlertingComponent,
    PrometheusComponent,
    GatewayComponent,
    SidecarComponent,
    DashboardsComponent,
]


def events_seen_by_prometheus(prometheus_url: str) -> dict[str, float]:
    """Events per tenant as Prometheus has scraped them: the proof the pipeline works end to end."""
    r = requests.get(
        f"{prometheus_url}/api/v1/query",
        params={"query": f"sum by ({c.TENANT}) ({c.EVENTS.name})"},
        timeout=5,
    )
    r.raise_for_status()
    return {row["metric"][c.TENANT]: float(row["value"][1]) for row in r.json()["data"]["result"]}


def check_args(args: argparse.Namespace) -> None:
    """Every flag, before anything starts: a bad one is one line and exit code 2, nothing else printed."""
    if args.duration is not None and not args.duration > 0:
        raise UsageError("--duration must be a positive number of seconds")
    if not args.day_seconds > 0:
        raise UsageError("--day-seconds must be positive")
    try:  # Prometheus takes integers with units only; the sidecar, a positive interval
        valid = is_prometheus_duration(args.scrape_interval) and parse_duration(args.scrape_interval) > 0
    except UsageError:
        valid = False
    if not valid:
        raise UsageError(
            f"--scrape-interval must be a duration such as 1s or 15s, not {args.scrape_interval!r}"
        )
    for flag, port in (("--exporter-port", args.exporter_port), ("--prometheus-port", args.prometheus_port)):
        if not 0 <= port < 65536:
            raise UsageError(f"{flag} must be 0-65535 (0: any free port), not {port}")
    misbehaviour(args.misbehave, TENANTS)


def remove_saved(workdir: Path, components: list[Component]) -> list[Path]:
    """``--fresh``: what earlier runs left for the next one (models, TSDB, notification log), removed."""
    removed = []
    for name in (name for component in components for name in component.saved):
        path = workdir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(path)
    return removed


class StopSignals:
    """SIGINT and SIGTERM for the demo's lifetime.

    The first one, while the demo starts or runs, interrupts the main thread (KeyboardInterrupt), wherever
    it is. Once stopping has begun, for that reason or any other, later ones are only acknowledged: a
    second Ctrl-C, or ``timeout``, which signals the demo and then its whole process group, must not cut
    the stop short and leave children running (they run in their own sessions, so no signal of the
    terminal's reaches them: only the demo's stop, or the parent-death guard of ``context.child``).
    """

    def __init__(self) -> None:
        self.stopping = False

    def __enter__(self) -> StopSignals:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if not self.stopping:
            self.stopping = True
            raise KeyboardInterrupt
        with contextlib.suppress(OSError):  # not print(): the main thread may be inside a print
            os.write(2, b"(already stopping: waiting for the demo's processes to exit)\n")

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """The part a signal may interrupt; leaving it, however, begins the stop."""
        try:
            yield
        finally:
            self.stopping = True


def run(args: argparse.Namespace) -> int:
    check_args(args)
    workdir = Path(args.workdir).resolve()
    components = [make() for make in COMPONENTS]
    if args.fresh:
        removed = remove_saved(workdir, components)
        shown = ", ".join(str(p) for p in removed)
        print(f"--fresh: removed {shown}" if removed else f"--fresh: nothing saved in {workdir}", flush=True)
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(workdir=workdir, args=args)
    prepared: list[Component] = []
    started: list[Component] = []
    with StopSignals() as signals:
        try:
            with signals.interruptible():
                for component in components:
                    component.prepare(ctx)
                    prepared.append(component)
                for component in components:
                    print(f"starting {component.name} ...", flush=True)
                    started.append(component)  # before start: stop copes with a start cut short
                    component.start(ctx)
                _show(ctx)
                deadline = None if args.duration is None else time.monotonic() + args.duration
                while deadline is None or time.monotonic() < deadline:
                    time.sleep(0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic())))
        except KeyboardInterrupt:
            print("\nstopping ...", flush=True)
        finally:
            _stop(ctx, prepared, started)
    return 0


def _show(ctx: DemoContext) -> None:
    print("\ntenantpulse demo is running (Ctrl-C to stop)", flush=True)
    for name, url in ctx.urls.items():
        print(f"  {name:<20} {url}")
    print(f"  {'tenants':<20} {', '.join(ctx.tenants)} (keys in {ctx.workdir / 'exporter-keys.yaml'})")
    print(f"  {'logs':<20} {ctx.workdir / 'logs'}")
    for note in ctx.notes:
        print(f"  {note}")
    sys.stdout.flush()
    ctx.running.set()


def _stop(ctx: DemoContext, prepared: list[Component], started: list[Component]) -> None:
    """Every prepared component, in reverse order, each whatever happened to the one before."""
    if ctx.running.is_set():
        try:
            seen = events_seen_by_prometheus(ctx.values["prometheus_url"])
            counts = ", ".join(f"{t}={v:.0f}" for t, v in sorted(seen.items()))
            print(f"events seen by prometheus: {counts or 'none yet (no scrape so far)'}")
        except (requests.RequestException, KeyError, ValueError) as exc:
            print(f"could not query prometheus: {exc}")
    for component in reversed(prepared):
        try:
            component.stop()
        except Exception as exc:  # noqa: BLE001 - the others must still stop
            print(f"could not stop {component.name}: {exc}", flush=True)
    if started:
        print("demo stopped", flush=True)
