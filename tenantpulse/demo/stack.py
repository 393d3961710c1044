"""The demo stack: the whole stack on loopback with embedded defaults.

Exporter, synthetic traffic for three tenants, Prometheus with the generated alert rules, Alertmanager
delivering to local Slack/SMTP sinks, and the anomaly sidecar. The demo is an ordered list of
components. Each one first ``prepare``s (claims ports, adds scrape jobs, rule files or Alertmanager
targets to the shared context), then all ``start`` in order, and they ``stop`` in reverse order on
Ctrl-C, SIGTERM or when ``--duration`` runs out.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

from tenantpulse.conventions import catalog as c
from tenantpulse.demo.alerting import AlertingComponent
from tenantpulse.demo.context import Component, DemoContext
from tenantpulse.demo.exporter import ExporterComponent, TrafficComponent
from tenantpulse.demo.prometheus import PrometheusComponent
from tenantpulse.demo.sidecar import SidecarComponent
from tenantpulse.kernel.errors import UsageError

# The demo's parts, in start order (stopped in reverse). Alerting adds the rule file and Alertmanager
# target Prometheus starts with; the sidecar needs Prometheus running.
COMPONENTS: list[Callable[[], Component]] = [
    ExporterComponent,
    TrafficComponent,
    AlertingComponent,
    PrometheusComponent,
    SidecarComponent,
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


def run(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be a positive number of seconds")
    if not args.day_seconds > 0:
        raise UsageError("--day-seconds must be positive")
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(workdir=workdir, args=args)
    components = [make() for make in COMPONENTS]
    started: list[Component] = []

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        for component in components:
            component.prepare(ctx)
        for component in components:
            print(f"starting {component.name} ...", flush=True)
            component.start(ctx)
            started.append(component)
        print("\ntenantpulse demo is running (Ctrl-C to stop)", flush=True)
        for name, url in ctx.urls.items():
            print(f"  {name:<20} {url}")
        print(f"  {'tenants':<20} {', '.join(ctx.tenants)} (keys in {workdir / 'exporter-keys.yaml'})")
        print(f"  {'logs':<20} {workdir / 'logs'}")
        for note in ctx.notes:
            print(f"  {note}")
        sys.stdout.flush()
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic())))
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    finally:
        if "prometheus_url" in ctx.values and any(s.name == "prometheus" for s in started):
            try:
                seen = events_seen_by_prometheus(ctx.values["prometheus_url"])
                counts = ", ".join(f"{t}={v:.0f}" for t, v in sorted(seen.items()))
                print(f"events seen by prometheus: {counts or 'none yet (no scrape so far)'}")
            except (requests.RequestException, KeyError, ValueError) as exc:
                print(f"could not query prometheus: {exc}")
        for component in reversed(started):
            component.stop()
        signal.signal(signal.SIGTERM, previous)
        print("demo stopped", flush=True)
    return 0
