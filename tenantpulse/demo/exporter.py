"""The exporter with demo keys for every tenant, and the synthetic traffic that feeds it."""

from __future__ import annotations

import secrets

import yaml

from tenantpulse.demo.context import DemoContext, child, pick_port
from tenantpulse.exporters.traffic import MISBEHAVIOURS, Misbehaviour, TenantProfile, TrafficGenerator
from tenantpulse.kernel.errors import UsageError
from tenantpulse.kernel.processes import python_env, tenantpulse_command


def misbehaviour(value: str | None, tenants: tuple[str, ...]) -> tuple[str, Misbehaviour] | None:
    """``--misbehave TENANT:MODE`` checked; the demo calls this before it starts anything."""
    if not value:
        return None
    tenant, _, mode = value.partition(":")
    known = next((m for m in MISBEHAVIOURS if m == mode), None)
    if tenant not in tenants or known is None:
        raise UsageError(
            f"--misbehave must be TENANT:MODE with TENANT in {list(tenants)} and MODE in {list(MISBEHAVIOURS)}"
        )
    return tenant, known


class ExporterComponent:
    name = "exporter"
    saved: tuple[str, ...] = ()  # the exporter's series live in memory only

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
        ctx.values["keys_file"] = self.keys_file  # the gateway serves reads with the same keys
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
    saved: tuple[str, ...] = ()

    def prepare(self, ctx: DemoContext) -> None:
        self.misbehave = misbehaviour(ctx.args.misbehave, ctx.tenants)
        self.gen: TrafficGenerator | None = None

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
        if self.gen is not None:
            self.gen.stop()
