"""Read-path gateway overhead: the dashboards' queries through ``tenantpulse gateway`` vs straight to Prometheus.

A real Prometheus scrapes the real exporter (3 tenants, fed by the traffic generator for a while, so the
queries have series to read); the gateway runs as its own process (``tenantpulse gateway``, uvicorn,
logging at warning) in front of it. Each query of the realtime dashboard (Grafana's ``$tenant`` and
``$__rate_interval`` filled in) is sent as Grafana sends it, a form-encoded ``/api/v1/query_range`` over
the last hour, alternately to Prometheus directly (A) and through the gateway with the tenant's read key
(B): A, B, A, B, ... over several rounds, one keep-alive session each, so machine noise hits both alike.
Reported: per round the median of each, the min and median of those over rounds, and p50/p99 over all
requests; then the gateway's own rewrite cost (``gateway.enforce``) per query, in microseconds.
Run: ``python -m benchmarks gateway``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import requests

from tenantpulse.exporters.traffic import TenantProfile, TrafficGenerator
from tenantpulse.gateway.enforce import enforce
from tenantpulse.grafana import realtime
from tenantpulse.grafana.render import to_data
from tests.support.exporter import Exporter
from tests.support.gateway import Gateway, auth_headers
from tests.support.ports import wait_until
from tests.support.prometheus import Prometheus

TENANTS = ("bench-a", "bench-b", "bench-c")
ROUNDS = 5
PER_ROUND = 20  # requests per query per side per round
TRAFFIC_SECONDS = 20
REWRITES = 2_000


def dashboard_queries(tenant: str) -> list[str]:
    """Every target of the realtime dashboard, as Grafana sends it for ``tenant``."""
    board = to_data(realtime.create_realtime_dashboard())
    found: list[str] = []

    def walk(panels: list[dict[str, object]]) -> None:
        for panel in panels:
            walk(panel.get("panels", []))  # type: ignore[arg-type]
            for target in panel.get("targets", []):  # type: ignore[union-attr]
                expr = target.get("expr")  # type: ignore[union-attr]
                if expr and expr not in found:
                    found.append(expr)

    walk(board["panels"])
    return [
        q.replace("$tenant", tenant).replace("$__rate_interval", "1m").replace("$__range", "1h")
        for q in found
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(session: requests.Session, url: str, form: dict[str, str], headers: dict[str, str]) -> float:
    started = time.perf_counter()
    r = session.post(url, data=form, headers=headers, timeout=30)
    elapsed = time.perf_counter() - started
    if r.status_code != 200:
        raise SystemExit(f"{url}: {r.status_code} {r.text[:200]}")
    return elapsed


def rewrite_costs(queries: list[str], tenant: str) -> list[float]:
    per_query = []
    for query in queries:
        enforce(query, tenant)
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(REWRITES // 5):
                enforce(query, tenant)
            runs.append((time.perf_counter() - started) / (REWRITES // 5))
        per_query.append(min(runs))
    return per_query


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with Exporter(work / "exporter", tenants=TENANTS, extra_args=["--log-level", "warning"]) as ex:
            (work / "prom").mkdir()
            with Prometheus(work / "prom", [ex.scrape_config("tenantpulse")]) as prom:
                wait_until(prom.targets_up, what="exporter scraped")
                gen = TrafficGenerator(ex.url, [TenantProfile(t, ex.keys[t]) for t in TENANTS], seed=7)
                gen.start(interval=1.0)
                time.sleep(TRAFFIC_SECONDS)
                gen.stop()
                time.sleep(2)
                with Gateway(work / "gw", prom.url, ex.keys_file, ["--log-level", "warning"]) as gw:
                    run(prom.url, gw.url, ex.keys["bench-a:read"])


def run(prom_url: str, gateway_url: str, key: str) -> None:
    tenant = "bench-a"
    queries = dashboard_queries(tenant)
    direct, through = requests.Session(), requests.Session()
    headers = auth_headers(key)
    now = time.time()
    forms = [{"query": q, "start": f"{now - 3600:.3f}", "end": f"{now:.3f}", "step": "15"} for q in queries]
    for form in forms:  # warm both paths (connections, caches)
        measure(direct, f"{prom_url}/api/v1/query_range", form, {})
        measure(through, f"{gateway_url}/api/v1/query_range", form, headers)
    a_all: list[float] = []
    b_all: list[float] = []
    a_rounds: list[float] = []
    b_rounds: list[float] = []
    for _ in range(ROUNDS):
        a_round: list[float] = []
        b_round: list[float] = []
        for _ in range(PER_ROUND):
            for form in forms:
                a_round.append(measure(direct, f"{prom_url}/api/v1/query_range", form, {}))
                b_round.append(measure(through, f"{gateway_url}/api/v1/query_range", form, headers))
        a_rounds.append(statistics.median(a_round))
        b_rounds.append(statistics.median(b_round))
        a_all += a_round
        b_all += b_round
    ms = 1000.0
    print(
        f"{len(queries)} dashboard queries (query_range, 1h at 15s), {ROUNDS} rounds x {PER_ROUND} each, A/B interleaved"
    )
    print(f"{'':28} {'direct':>10} {'gateway':>10} {'overhead':>10}")
    for name, a, b in (
        ("round median, min (ms)", min(a_rounds), min(b_rounds)),
        ("round median, median (ms)", statistics.median(a_rounds), statistics.median(b_rounds)),
        ("p50 all requests (ms)", percentile(a_all, 0.5), percentile(b_all, 0.5)),
        ("p99 all requests (ms)", percentile(a_all, 0.99), percentile(b_all, 0.99)),
    ):
        print(f"{name:28} {a * ms:10.2f} {b * ms:10.2f} {(b - a) * ms:+10.2f}")
    costs = rewrite_costs(queries, tenant)
    print(
        f"rewrite (gateway.enforce) per dashboard query: min {min(costs) * 1e6:.0f} us, "
        f"median {statistics.median(costs) * 1e6:.0f} us, max {max(costs) * 1e6:.0f} us"
    )
    hostile = (
        'sum without (tenant) (rate({__name__=~"tenantpulse_.+", event_type!="x"}[5m] offset 1m)) '
        "/ on () group_left max_over_time(sum(tenantpulse_revenue_total)[1h:1m] @ end())"
    )
    print(
        f"rewrite of a larger query ({len(hostile)} chars): {min(rewrite_costs([hostile], tenant)) * 1e6:.0f} us"
    )


if __name__ == "__main__":
    main()
