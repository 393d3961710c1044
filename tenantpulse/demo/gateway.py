"""The query gateway as a ``tenantpulse demo`` component: the tenants' read path.

Add ``GatewayComponent`` to ``tenantpulse.demo.stack.COMPONENTS`` after ``PrometheusComponent``. It serves
the demo Prometheus's query API with the exporter's keys (``ctx.values["keys_file"]``), so a tenant's key
reads that tenant's series only; the printed example shows it, and the same query with another tenant's
matcher is refused.
"""

from __future__ import annotations

import shlex
import urllib.parse

from tenantpulse.conventions import catalog as c
from tenantpulse.demo.context import DemoContext, child, pick_port
from tenantpulse.kernel.processes import python_env, tenantpulse_command

PREFERRED_PORT = 9110


class GatewayComponent:
    name = "query gateway"
    saved: tuple[str, ...] = ()

    def prepare(self, ctx: DemoContext) -> None:
        self.port = pick_port(PREFERRED_PORT)
        self.url = f"http://127.0.0.1:{self.port}"
        ctx.urls["query gateway"] = (
            f"{self.url}/api/v1/query (a Grafana Prometheus datasource URL: {self.url})"
        )
        ctx.values["gateway_url"] = self.url
        ctx.scrape_configs.append(
            {"job_name": "tenantpulse-gateway", "static_configs": [{"targets": [f"127.0.0.1:{self.port}"]}]}
        )
        self.process = child(
            "gateway",
            tenantpulse_command(
                "gateway", "--backend", ctx.values["prometheus_url"], "--keys", str(ctx.values["keys_file"]),
                "--host", "127.0.0.1", "--port", str(self.port),
            ),
            ctx,
            env=python_env(),
        )  # fmt: skip

    def start(self, ctx: DemoContext) -> None:
        self.process.start(f"{self.url}/healthz")
        first = ctx.tenants[0]
        query = f"sum by ({c.TENANT}) (rate({c.EVENTS.name}[1m]))"
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        ctx.notes.append(f"as {first} (its series only):  curl -s -u :{ctx.keys[first]} {shlex.quote(url)}")

    def stop(self) -> None:
        self.process.stop()
