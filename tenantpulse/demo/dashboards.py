"""The live dashboards as a ``tenantpulse demo`` component: ``tenantpulse dashboards serve``.

After the gateway (tenant keys read through it) and the sidecar (the anomaly bands and forecasts it
draws). Its URL is the first the demo prints: that is where a new user looks first. It serves the
dashboards of a small spec written into the work directory, generated as for Grafana.
"""

from __future__ import annotations

from typing import Any

import yaml

from tenantpulse.demo.context import DemoContext, child, pick_port
from tenantpulse.kernel.processes import python_env, tenantpulse_command

PREFERRED_PORT = 9120
SPEC: dict[str, Any] = {
    "realtime": [{"title": "tenantpulse realtime"}],
    "dashboards": [
        {
            "name": "Streaming business overview",
            "components": [
                {"type": "kpi", "title": "Plays per minute", "indicator": "plays_per_minute"},
                {"type": "kpi", "title": "Active users", "indicator": "active_users"},
                {"type": "gauge", "title": "Conversion", "indicator": "conversion_rate", "min": 0, "max": 1},
                {"type": "kpi", "title": "Unique users today", "indicator": "unique_users_1d"},
                {
                    "type": "chart",
                    "title": "Plays and sessions",
                    "indicators": ["plays_per_minute", "sessions_per_minute"],
                    "width": 16,
                },
                {
                    "type": "table",
                    "title": "Tenant at a glance",
                    "indicators": ["request_rate", "error_rate", "revenue_rate"],
                    "width": 8,
                },
                {"type": "anomaly", "title": "Plays vs expected", "indicator": "plays_per_minute"},
                {"type": "forecast", "title": "Revenue outlook", "indicator": "revenue_rate"},
            ],
        }
    ],
}


class DashboardsComponent:
    name = "live dashboards"
    saved: tuple[str, ...] = ()

    def prepare(self, ctx: DemoContext) -> None:
        self.port = pick_port(PREFERRED_PORT)
        self.url = f"http://127.0.0.1:{self.port}"
        spec = ctx.workdir / "dashboards.yaml"
        spec.write_text(yaml.safe_dump(SPEC, sort_keys=False))
        first = ctx.tenants[0]
        # First in the printed list, whatever the order components prepare in.
        ctx.urls = {
            "live dashboards": f"{self.url}/ (any user name; password: a key, e.g. {first}'s {ctx.keys[first]})",
            **ctx.urls,
        }
        self.process = child(
            "dashboards",
            tenantpulse_command(
                "dashboards", "serve", "--spec", str(spec), "--keys", str(ctx.values["keys_file"]),
                "--prometheus-url", ctx.values["prometheus_url"], "--gateway-url", ctx.values["gateway_url"],
                "--scrape-interval", ctx.args.scrape_interval, "--host", "127.0.0.1", "--port", str(self.port),
            ),
            ctx,
            env=python_env(),
        )  # fmt: skip

    def start(self, ctx: DemoContext) -> None:
        self.process.start(f"{self.url}/healthz")
        ctx.notes.append(
            f"all tenants in the live dashboards: the admin key {ctx.keys['admin']} as the password; "
            f"pictures: tenantpulse dashboards snapshot --url {self.url} --key-file KEYFILE --out DIR"
        )

    def stop(self) -> None:
        self.process.stop()
