"""HTTP ingest events/s with 500-event batches on loopback: the real exporter vs a minimal baseline server.

Both servers run as uvicorn subprocesses with logging off; one client in this process posts the same
pre-serialised batches (3 tenants in turn, user ids, durations) to each, alternating rounds so machine
noise hits both alike. The baseline is what a team would write first: a plain Starlette endpoint that
``json.loads`` the batch and does ``Counter.labels(tenant, event_type).inc()`` (and a histogram
``observe`` for durations) per event with ``prometheus_client`` — no auth, validation, pseudonymisation,
unique-user sketches, rate limit or all-or-nothing batches, which the exporter does on top.
Run: ``python -m benchmarks http_ingest``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

from tenantpulse.conventions import catalog
from tenantpulse.exporters.traffic import TenantProfile, TrafficGenerator

BATCH = 500
ROUNDS = 8
ROUND_SECONDS = 2.0
TENANTS = ("bench-a", "bench-b", "bench-c")
REPO = Path(__file__).resolve().parents[1]


def baseline_app() -> object:
    """The baseline server: Starlette + prometheus_client, one ``.labels().inc()`` per event."""
    from prometheus_client import Counter, Histogram, generate_latest
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    events = Counter(catalog.EVENTS.family, catalog.EVENTS.help, catalog.EVENTS.labels)
    durations = Histogram(
        catalog.EVENT_DURATION.name,
        catalog.EVENT_DURATION.help,
        catalog.EVENT_DURATION.labels,
        buckets=catalog.EVENT_DURATION.buckets,
    )

    async def ingest(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        for e in body["events"]:
            events.labels(e["tenant_id"], e["event_type"]).inc()
            ms = e.get("metadata", {}).get("duration_ms")
            if ms is not None:
                durations.labels(e["tenant_id"], e["event_type"]).observe(ms / 1000)
        return JSONResponse({"accepted_events": len(body["events"])})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(), media_type="text/plain")

    async def ready(request: Request) -> Response:
        return Response("ok")

    return Starlette(
        routes=[
            Route("/analytics/metrics", ingest, methods=["POST"]),
            Route("/metrics", metrics),
            Route("/readyz", ready),
        ]
    )


def serve_baseline(port: int) -> None:
    import uvicorn

    uvicorn.run(baseline_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/readyz", timeout=1).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{command} did not become ready")


def batches(keys: dict[str, str]) -> list[tuple[bytes, dict[str, str]]]:
    """Pre-serialised 500-event batches per tenant, with the tenant's auth header."""
    gen = TrafficGenerator("http://unused", [TenantProfile(t, keys[t]) for t in TENANTS], seed=3)
    out = []
    for tenant in TENANTS:
        profile = gen.profiles[tenant]
        events: list[dict[str, object]] = []
        while len(events) < BATCH:
            events += gen.batch(profile, dt=10.0)["events"]
        body = json.dumps({"events": events[:BATCH]}).encode()
        out.append((body, {"Authorization": f"Bearer {keys[tenant]}", "Content-Type": "application/json"}))
    return out


def measure(
    session: requests.Session, url: str, work: list[tuple[bytes, dict[str, str]]], seconds: float
) -> float:
    """Events/s accepted over ``seconds`` of back-to-back batch posts."""
    sent = 0
    i = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        body, headers = work[i % len(work)]
        r = session.post(f"{url}/analytics/metrics", data=body, headers=headers, timeout=30)
        if r.status_code != 200:
            raise RuntimeError(f"{url} refused a batch: {r.status_code} {r.text[:300]}")
        sent += BATCH
        i += 1
    return sent / (time.perf_counter() - t0)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-http-"))
    keys = {t: f"bench-{t}-key" for t in TENANTS}
    keys_file = tmp / "keys.yaml"
    keys_file.write_text(
        yaml.safe_dump({"keys": [{"key": k, "tenant": t, "scopes": ["write"]} for t, k in keys.items()]})
    )
    ours_port, base_port = free_port(), free_port()
    ours_url, base_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{base_port}"
    ours = start(
        [
            sys.executable,
            "-m",
            "tenantpulse.cli",
            "exporter",
            "--port",
            str(ours_port),
            "--api-keys",
            str(keys_file),
            "--rate-limit",
            "1e9",
            "--log-level",
            "warning",
        ],
        ours_url,
    )
    base = start(
        [sys.executable, "-m", "benchmarks.bench_http_ingest", "--serve-baseline", str(base_port)], base_url
    )
    try:
        work = batches(keys)
        session = requests.Session()
        measure(session, ours_url, work, 1.0)  # warm-up: both servers see every tenant/type first
        measure(session, base_url, work, 1.0)
        ours_rates, base_rates = [], []
        for _ in range(ROUNDS):
            ours_rates.append(measure(session, ours_url, work, ROUND_SECONDS))
            base_rates.append(measure(session, base_url, work, ROUND_SECONDS))
        # Each round pairs the two servers back to back, so load from elsewhere on the machine hits
        # both alike; the median of the per-round ratios is the figure.
        ratio = statistics.median(o / b for o, b in zip(ours_rates, base_rates, strict=True))
        print(
            f"http ingest, {BATCH}-event JSON batches, 1 client on loopback, {ROUNDS} paired rounds of {ROUND_SECONDS:g}s"
        )
        print(
            f"  tenantpulse exporter:                 {statistics.median(ours_rates):>10,.0f} events/s (median)"
        )
        print(
            f"  baseline starlette+prometheus_client: {statistics.median(base_rates):>10,.0f} events/s (median)"
        )
        print(f"  ratio (exporter / baseline):          {ratio:>10.2f}x (median of per-round ratios)")
    finally:
        for proc in (ours, base):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-baseline":
        serve_baseline(int(sys.argv[2]))
    else:
        main()
