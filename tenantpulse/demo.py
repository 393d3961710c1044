"""``tenantpulse demo``: the whole stack on loopback with embedded defaults.

Exporter, synthetic traffic for three tenants, Prometheus with the generated alert rules, Alertmanager
delivering to local Slack/SMTP sinks, and the anomaly sidecar. The demo is an ordered list of
components. Each one first ``prepare``s (claims ports, adds scrape jobs, rule files or Alertmanager
targets to the shared context), then all ``start`` in order, and they ``stop`` in reverse order on
Ctrl-C, SIGTERM or when ``--duration`` runs out.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import signal
import socket
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import requests
import yaml

from exporters import catalog as c
from exporters import indicators
from exporters.traffic import MISBEHAVIOURS, TenantProfile, TrafficGenerator
from tenantpulse.errors import UsageError
from tenantpulse.processes import ChildProcess, python_env, tenantpulse_command

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


class ExporterComponent:
    name = "exporter"

    def prepare(self, ctx: DemoContext) -> None:
        self.port = pick_port(ctx.args.exporter_port)
        self.url = f"http://127.0.0.1:{self.port}"
        entries = []
        for tenant in ctx.tenants:
            ctx.keys[tenant] = f"demo-{tenant}-{secrets.token_hex(6)}"
            entries.append(
                {"id": tenant, "key": ctx.keys[tenant], "tenant": tenant, "scopes": ["write", "read"]}
            )
        ctx.keys["admin"] = f"demo-admin-{secrets.token_hex(6)}"
        entries.append({"id": "admin", "key": ctx.keys["admin"], "tenant": "*", "scopes": ["admin"]})
        self.keys_file = ctx.workdir / "exporter-keys.yaml"
        self.keys_file.write_text(yaml.safe_dump({"keys": entries}, sort_keys=False))
        ctx.urls["exporter"] = self.url
        ctx.urls["exporter API docs"] = f"{self.url}/docs"
        ctx.values["exporter_url"] = self.url
        ctx.scrape_configs.append(
            {"job_name": "tenantpulse-exporter", "static_configs": [{"targets": [f"127.0.0.1:{self.port}"]}]}
        )
        self.process = child(
            self.name,
            tenantpulse_command(
                "exporter", "--host", "127.0.0.1", "--port", str(self.port), "--api-keys", str(self.keys_file)
            ),
            ctx,
            env=python_env(),
        )

    def start(self, ctx: DemoContext) -> None:
        self.process.start(f"{self.url}/readyz")
        first = ctx.tenants[0]
        ctx.notes.append(
            f"try:  curl -s -H 'Authorization: Bearer {ctx.keys[first]}' {self.url}/analytics/metrics/{first}"
        )

    def stop(self) -> None:
        self.process.stop()


class TrafficComponent:
    name = "traffic"

    def prepare(self, ctx: DemoContext) -> None:
        self.misbehave: tuple[str, str] | None = None
        if ctx.args.misbehave:
            tenant, _, mode = ctx.args.misbehave.partition(":")
            if tenant not in ctx.tenants or mode not in MISBEHAVIOURS:
                raise UsageError(
                    f"--misbehave must be TENANT:MODE with TENANT in {list(ctx.tenants)} "
                    f"and MODE in {list(MISBEHAVIOURS)}"
                )
            self.misbehave = (tenant, mode)

    def start(self, ctx: DemoContext) -> None:
        rates = (30.0, 20.0, 10.0)
        profiles = [
            TenantProfile(t, ctx.keys[t], rate=rates[i % len(rates)]) for i, t in enumerate(ctx.tenants)
        ]
        self.gen = TrafficGenerator(ctx.values["exporter_url"], profiles, day_seconds=ctx.args.day_seconds)
        if self.misbehave:
            self.gen.misbehave(*self.misbehave)
            ctx.notes.append(f"tenant {self.misbehave[0]} misbehaves: {self.misbehave[1]}")
        ctx.values["traffic"] = self.gen
        self.gen.start(interval=1.0)

    def stop(self) -> None:
        self.gen.stop()


class PrometheusComponent:
    name = "prometheus"

    def prepare(self, ctx: DemoContext) -> None:
        self.binary = shutil.which("prometheus")
        if self.binary is None:
            raise UsageError("the demo needs Prometheus: apt-get install prometheus (or `make setup`)")
        self.port = pick_port(ctx.args.prometheus_port)
        self.url = f"http://127.0.0.1:{self.port}"
        ctx.urls["prometheus"] = self.url
        ctx.values["prometheus_url"] = self.url

    def start(self, ctx: DemoContext) -> None:
        interval = ctx.args.scrape_interval
        config: dict[str, Any] = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": ctx.scrape_configs,
            "rule_files": ctx.rule_files,
        }
        if ctx.alertmanagers:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": ctx.alertmanagers}]}]}
        config_path = ctx.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.process = child(
            self.name,
            [
                self.binary or "prometheus",
                f"--config.file={config_path}",
                f"--storage.tsdb.path={ctx.workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
            ],
            ctx,
        )
        self.process.start(f"{self.url}/-/ready")
        for name in ("request_rate", "error_rate", "p95_latency", "revenue_rate"):
            expr = indicators.get(name).promql(window="1m")
            link = f"{self.url}/graph?" + urllib.parse.urlencode({"g0.expr": expr, "g0.tab": "0"})
            ctx.notes.append(f"{name}:  {expr}\n    {link}")

    def stop(self) -> None:
        self.process.stop()


def _alerting() -> Component:
    from alert_rules.demo import AlertingComponent  # imports this module, so resolved at run time

    return AlertingComponent()


def _sidecar() -> Component:
    from anomaly_sidecar.demo import SidecarComponent  # imports this module, so resolved at run time

    return SidecarComponent()


# The demo's parts, in start order (stopped in reverse). Alerting adds the rule file and Alertmanager
# target Prometheus starts with; the sidecar needs Prometheus running.
COMPONENTS: list[Callable[[], Component]] = [
    ExporterComponent,
    TrafficComponent,
    _alerting,
    PrometheusComponent,
    _sidecar,
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


def register(root: Any, generate: Any) -> None:
    p = root.add_parser(
        "demo",
        help="run the local stack: exporter, traffic for 3 tenants, Prometheus, Alertmanager, anomaly sidecar",
        description="Start the exporter, a traffic generator for three tenants, a real Prometheus scraping it "
        "with the generated alert rules, a real Alertmanager delivering to local Slack/SMTP sinks, and the "
        "anomaly sidecar, which injects an error spike into one tenant once its models are warm; print where "
        "to look; stop everything on Ctrl-C or after --duration.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="stop after this long")
    p.add_argument("--workdir", default=".demo", help="keys, configs, Prometheus data and logs go here")
    p.add_argument("--exporter-port", type=int, default=9464, help="0: any free port")
    p.add_argument("--prometheus-port", type=int, default=9090, help="0: any free port")
    p.add_argument(
        "--scrape-interval", default="1s", help="Prometheus scrape/evaluation and sidecar cycle interval"
    )
    p.add_argument("--day-seconds", type=float, default=600.0, help="length of one synthetic traffic 'day'")
    p.add_argument(
        "--misbehave", metavar="TENANT:MODE", help=f"make a tenant misbehave: {', '.join(MISBEHAVIOURS)}"
    )
    p.set_defaults(func=run)
