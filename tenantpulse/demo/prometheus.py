"""A real Prometheus scraping what the other components registered, with their rule files and Alertmanagers."""

from __future__ import annotations

import shutil
import urllib.parse
from typing import Any

import yaml

from tenantpulse.conventions import indicators
from tenantpulse.demo.context import DemoContext, child, pick_port
from tenantpulse.kernel.errors import UsageError

DATA_DIR = "prometheus-data"  # the TSDB, kept between runs (the sidecar backfills from it)


class PrometheusComponent:
    name = "prometheus"
    saved: tuple[str, ...] = (DATA_DIR,)

    def prepare(self, ctx: DemoContext) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise UsageError("the demo needs Prometheus: apt-get install prometheus (or `make setup`)")
        self.port = pick_port(ctx.args.prometheus_port)
        self.url = f"http://127.0.0.1:{self.port}"
        ctx.urls["prometheus"] = self.url
        ctx.values["prometheus_url"] = self.url
        self.config_path = ctx.workdir / "prometheus.yml"  # written at start, once every job is known
        self.process = child(
            self.name,
            [
                binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={ctx.workdir / DATA_DIR}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
            ],
            ctx,
        )

    def start(self, ctx: DemoContext) -> None:
        interval = ctx.args.scrape_interval
        config: dict[str, Any] = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": ctx.scrape_configs,
            "rule_files": ctx.rule_files,
        }
        if ctx.alertmanagers:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": ctx.alertmanagers}]}]}
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.process.start(f"{self.url}/-/ready")
        for name in ("request_rate", "error_rate", "p95_latency", "revenue_rate"):
            expr = indicators.get(name).promql(window="1m")
            link = f"{self.url}/graph?" + urllib.parse.urlencode({"g0.expr": expr, "g0.tab": "0"})
            ctx.notes.append(f"{name}:  {expr}\n    {link}")

    def stop(self) -> None:
        self.process.stop()
