"""The anomaly sidecar as a ``tenantpulse demo`` component.

Add ``SidecarComponent`` to ``tenantpulse.demo.stack.COMPONENTS`` after ``PrometheusComponent``. It adds the
sidecar's scrape job, starts ``tenantpulse sidecar`` against the demo Prometheus once Prometheus is up,
cycling at the scrape interval. Unless ``--misbehave`` already made a tenant misbehave from the start
(then that behaviour is what the sidecar learns as normal), it injects an anomaly itself: once the
models are past their warm-up, the first (busiest) tenant gets an error spike for ``SPIKE_SECONDS``; the scores
that cross the threshold are printed as they happen. Until then it prints a countdown every
``PROGRESS_EVERY`` seconds. The models are saved in ``STATE_FILE`` and resumed by the next run, which
then spikes within a few cycles (said at start; ``--fresh`` starts over).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from tenantpulse.conventions import catalog as c
from tenantpulse.demo.context import DemoContext, child, pick_port, say
from tenantpulse.kernel.durations import format_duration, parse_duration
from tenantpulse.kernel.processes import python_env, tenantpulse_command

WATCHED = "request_rate,error_rate,p95_latency,plays_per_minute"
SPIKE_SECONDS = 120.0
CALM_SAMPLES = 200  # samples per series before the injected anomaly (the detector's calibration settles)
RATE_STEPS = 8  # rate() window in scrape intervals: short enough that a change shows within a few cycles
PROGRESS_EVERY = 30.0  # seconds between two warm-up countdown lines
STATE_FILE = "sidecar.state"


def countdown(observed: int, interval: float, target: str) -> str:
    """The warm-up line: the least-trained series decides when the spike comes."""
    left = max(0, CALM_SAMPLES - observed) * interval
    return f"  [sidecar] warming up: {observed}/{CALM_SAMPLES} samples per series; spike into {target} in ~{left:.0f}s"


class SidecarComponent:
    name = "anomaly sidecar"
    saved: tuple[str, ...] = (STATE_FILE,)

    def prepare(self, ctx: DemoContext) -> None:
        self.port = pick_port(9108)
        self.url = f"http://127.0.0.1:{self.port}"
        self.interval = parse_duration(ctx.args.scrape_interval)
        self.keys_file = ctx.workdir / "sidecar-keys.yaml"
        self.admin_key = ctx.keys.get("admin", "")
        entries = [
            {"id": name, "key": key, "tenant": "*" if name == "admin" else name,
             "scopes": ["admin"] if name == "admin" else ["read", "write"]}
            for name, key in ctx.keys.items()
        ]  # fmt: skip
        self.keys_file.write_text(yaml.safe_dump({"keys": entries}, sort_keys=False))
        ctx.scrape_configs.append(
            {"job_name": "tenantpulse-sidecar", "static_configs": [{"targets": [f"127.0.0.1:{self.port}"]}]}
        )
        ctx.urls["anomaly sidecar"] = f"{self.url}/metrics"
        self.target = None if ctx.args.misbehave else ctx.tenants[0]  # the busiest: the clearest signal
        state = ctx.workdir / STATE_FILE
        ctx.notes.append(f"anomaly scores:  {c.ANOMALY_SCORE.name}")
        if state.exists():
            shown = Path(ctx.args.workdir) / STATE_FILE
            ctx.notes.append(f"resuming the sidecar's models from {shown}; --fresh starts over")
        else:
            minutes = CALM_SAMPLES * self.interval / 60
            ctx.notes.append(
                f"the sidecar's models warm up for ~{minutes:.1f} min at --scrape-interval {ctx.args.scrape_interval}"
            )
        if self.target:
            ctx.notes.append(f"after the warm-up the sidecar demo injects an error spike into {self.target}")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        interval = ctx.args.scrape_interval
        self.process = child(
            "sidecar",
            tenantpulse_command(
                "sidecar",
                "--prometheus-url", ctx.values["prometheus_url"],
                "--host", "127.0.0.1", "--port", str(self.port),
                "--api-keys", str(self.keys_file),
                "--state-file", str(state),
                "--indicators", WATCHED,
                "--interval", interval, "--rate-window", format_duration(RATE_STEPS * self.interval),
                "--backfill", "1h",
                "--forecast-horizon", "2m", "--forecast-every", "1m", "--forecast-history", "30m",
                "--forecast-step", interval,
            ),
            ctx,
            env=python_env(),
        )  # fmt: skip

    def start(self, ctx: DemoContext) -> None:
        self.process.start(f"{self.url}/healthz")
        traffic = ctx.values.get("traffic")
        if self.target and traffic is not None:
            self._thread = threading.Thread(target=self._inject, args=(traffic, ctx.running), daemon=True)
            self._thread.start()

    def _models(self) -> list[dict[str, Any]]:
        r = requests.get(
            f"{self.url}/analytics/ml/models",
            headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=5,
        )
        r.raise_for_status()
        return r.json()["models"]

    def _inject(self, traffic: Any, running: threading.Event) -> None:
        """Wait for warm models (counting down once the demo has printed its URLs), spike the target's
        errors, report crossings, heal."""
        next_countdown = 0.0
        while not self._stop.wait(self.interval):
            try:
                models = self._models()
                observed = min(int(m["observations"]) for m in models) if models else 0
            except (requests.RequestException, KeyError, ValueError, TypeError):
                continue
            if observed >= CALM_SAMPLES:
                break
            if models and running.is_set() and time.monotonic() >= next_countdown:
                say(countdown(observed, self.interval, str(self.target)))
                next_countdown = time.monotonic() + PROGRESS_EVERY
        else:
            return
        traffic.misbehave(self.target, "error_spike")
        say(f"  [sidecar] injected an error spike into {self.target} for {SPIKE_SECONDS:.0f}s")
        until = time.monotonic() + SPIKE_SECONDS
        shown: set[str] = set()
        while time.monotonic() < until and not self._stop.wait(self.interval):
            try:
                for m in self._models():
                    if m["alarm"] and m["indicator"] not in shown and m["tenant_id"] == self.target:
                        shown.add(m["indicator"])
                        say(
                            f"  [sidecar] {m['tenant_id']} {m['indicator']}: score {m['score']:.2f}, "
                            f"expected {m['expected']:.4g} in [{m['lower']:.4g}, {m['upper']:.4g}]"
                        )
            except (requests.RequestException, KeyError, ValueError, TypeError):
                continue
        traffic.misbehave(self.target, None)
        say(f"  [sidecar] {self.target} is back to normal")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.process.stop()
