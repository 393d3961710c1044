"""Every target of every generated dashboard, run through a real Prometheus scraping the real exporter.

Two tenants are seeded continuously through the exporter's ingest API; the real anomaly sidecar reads
that Prometheus and is scraped by it, so anomaly bands, scores and forecasts are its own output.
The SLO dashboard's recording rules come from the alert generator, evaluated by the same Prometheus.
Each query, with Grafana's variables substituted, must parse and return finite data for the selected
tenant and only for it: no panel may show "No data" for a seeded tenant.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import promql_parser
import pytest
import requests

from tenantpulse.alert_rules import rules as alert_rules_out
from tenantpulse.alert_rules import spec as alert_spec
from tenantpulse.conventions import catalog as c
from tenantpulse.grafana import generate, realtime
from tenantpulse.grafana import spec as s
from tenantpulse.grafana.custom import create_custom_dashboard
from tenantpulse.grafana.render import to_data
from tests.grafana.test_structure import EVERY_COMPONENT, EXAMPLE, panels_of
from tests.support.exporter import Exporter
from tests.support.gateway import Gateway
from tests.support.ports import free_port, wait_until
from tests.support.prometheus import Prometheus
from tests.support.sidecar import Sidecar

pytestmark = pytest.mark.integration

TENANTS = ("t1", "t2")
HORIZON = "30s"  # a forecast needs a quarter of its horizon as history (anomaly_sidecar.forecast)
# Fast cycles and forecasts from seconds of 1s-step history, so the sidecar publishes within seconds.
SIDECAR_ARGS = (
    "--warmup", "0",
    "--forecast-every", "2s",
    "--forecast-history", "2m",
    "--forecast-step", "1s",
    "--forecast-horizon", HORIZON,
)  # fmt: skip
# What Grafana would put in for its built-in variables on a 1s-scrape Prometheus (generous windows so a
# freshly started Prometheus already holds enough samples).
BUILTINS = {
    "$__rate_interval": "20s",
    "$__interval": "5s",
    "$__range": "1m",
}


def substitute(expr: str, tenant: str) -> str:
    for var, value in {**BUILTINS, "$tenant": tenant, "$horizon": HORIZON}.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def seed_once(exporter: Exporter, rng: random.Random) -> None:
    for tenant in TENANTS:
        events = [
            {
                "tenant_id": tenant,
                "user_id": f"user-{rng.randrange(50)}",
                "event_type": event_type,
                "metadata": {"duration_ms": rng.uniform(5, 900)},
            }
            for event_type in ("song_play", "song_play", "session_start", "error", "search")
        ]
        business = [
            {
                "tenant_id": tenant,
                "revenue": rng.uniform(1, 10),
                "active_users": 100 + rng.randrange(20),
                "conversion_rate": rng.uniform(0.02, 0.08),
            }
        ]
        exporter.post({"events": events, "business": business}, key=tenant)
        # One refused event per round, so the ingest-rejections panel has something to count.
        exporter.post({"tenant_id": tenant, "event_type": "bad type!"}, key=tenant, check=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Prometheus, Gateway, dict[str, str]]]:
    work = tmp_path_factory.mktemp("dashboards-live")
    stop = threading.Event()
    with Exporter(work / "exporter", tenants=TENANTS) as exporter:

        def seed() -> None:
            rng = random.Random(7)
            while not stop.is_set():
                seed_once(exporter, rng)
                stop.wait(0.25)

        seeder = threading.Thread(target=seed, daemon=True)
        seeder.start()
        sidecar_port = free_port()
        scrape = [
            exporter.scrape_config("tenantpulse"),
            {"job_name": "sidecar", "static_configs": [{"targets": [f"127.0.0.1:{sidecar_port}"]}]},
        ]
        # The SLO dashboard reads the alert spec's recording rules: load them as generated.
        spec = alert_spec.load_spec(EXAMPLE.parent / "alerts.yaml")
        rule_file = work / "rules.yml"
        rule_file.write_text(alert_rules_out.dump({"groups": alert_rules_out.rule_groups(spec)}))
        (work / "prometheus").mkdir()
        try:
            with (
                Prometheus(work / "prometheus", scrape, rule_files=[str(rule_file)]) as prom,
                Sidecar(work / "sidecar", prom.url, TENANTS, SIDECAR_ARGS, state=False, port=sidecar_port),
                Gateway(work / "gateway", prom.url, exporter.keys_file) as gateway,
            ):
                wait_until(prom.targets_up, timeout=30, what="exporter and sidecar scraped")
                for metric in (c.EVENTS, c.ANOMALY_UPPER, c.FORECAST_UPPER):
                    present = f"count by ({c.TENANT}) ({metric.name})"
                    wait_until(
                        lambda q=present: {r["metric"][c.TENANT] for r in prom.query(q)} == set(TENANTS),
                        timeout=60,
                        what=f"{metric.name} of both tenants in Prometheus",
                    )
                yield prom, gateway, exporter.keys
        finally:
            stop.set()
            seeder.join(5)


@pytest.fixture(scope="module")
def live(stack: tuple[Prometheus, Gateway, dict[str, str]]) -> Prometheus:
    return stack[0]


def dashboards_under_test() -> dict[str, dict[str, Any]]:
    boards = generate.dashboards(s.load(EXAMPLE))
    boards["realtime-every-widget"] = to_data(realtime.create_realtime_dashboard())
    # Tenant-defined KPIs need a per-tenant registration the seed does not make; everything else is live.
    components = [comp for comp in EVERY_COMPONENT if comp.get("metric") != c.CUSTOM_KPI.name]
    boards["every-component"] = to_data(create_custom_dashboard("Every component", components=components))
    return boards


def targets() -> list[tuple[str, str, str]]:
    return [
        (uid, f"{panel['title']} [{t['refId']}]", t["expr"])
        for uid, board in sorted(dashboards_under_test().items())
        for panel in panels_of(board)
        for t in panel.get("targets", [])
    ]


def finite_for_tenant(prom: Prometheus, expr: str, tenant: str) -> list[dict[str, Any]]:
    rows = prom.query(expr)
    return [
        r for r in rows if r["metric"].get(c.TENANT, tenant) == tenant and math.isfinite(float(r["value"][1]))
    ]


def test_every_target_of_every_dashboard_returns_data_for_each_seeded_tenant(live: Prometheus) -> None:
    pending = [
        (uid, where, tenant, substitute(expr, tenant)) for tenant in TENANTS for uid, where, expr in targets()
    ]
    assert len(pending) >= 100, "every dashboard's targets are checked"
    for *_, query in pending:
        live.query(query)  # raises with Prometheus's parse error if the expression is invalid
    # Windows fill as scrapes arrive: re-ask only what is still empty, for a bounded time overall.
    deadline = time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if not finite_for_tenant(live, p[3], p[2])]
        if pending:
            time.sleep(1)
    empty = [f"{uid} / {where} / tenant {tenant}: {query}" for uid, where, tenant, query in pending]
    assert empty == [], "panels with no data:\n" + "\n".join(empty)


def test_tenant_filter_keeps_other_tenants_out(live: Prometheus) -> None:
    for uid, where, expr in targets():
        rows = live.query(substitute(expr, "t1"))
        foreign = {r["metric"].get(c.TENANT) for r in rows} - {None, "t1"}
        assert not foreign, f"{uid} / {where} shows tenants {foreign} when t1 is selected"


def test_tenant_variable_query_lists_the_seeded_tenants(live: Prometheus) -> None:
    board = to_data(realtime.create_realtime_dashboard())
    tenant_var = next(v for v in board["templating"]["list"] if v["name"] == "tenant")
    # Grafana runs label_values(metric, label) as a series lookup; the same through the API:
    metric = tenant_var["query"].removeprefix("label_values(").split(",")[0]
    r = live.query(f"count by ({c.TENANT}) ({metric})")
    assert {row["metric"][c.TENANT] for row in r} >= set(TENANTS)


def tenant_scoped(expr: str, tenant: str) -> bool:
    """Every selector of ``expr`` already names exactly ``tenant`` (as the dashboards' tenant panels do)."""
    scoped = True

    def visit(node: object) -> None:
        nonlocal scoped
        if isinstance(node, promql_parser.VectorSelector):
            matchers = [(m.name, m.op, m.value) for m in node.matchers.matchers]
            scoped &= (c.TENANT, promql_parser.MatchOp.Equal, tenant) in matchers

    promql_parser.walk(promql_parser.parse(expr), visit)
    return scoped


def test_every_panel_query_through_the_gateway_equals_the_tenants_direct_answer(
    stack: tuple[Prometheus, Gateway, dict[str, str]],
) -> None:
    """What a tenant's Grafana organisation shows (its datasource is the gateway with its read key, basic
    auth) is what the operators see for that tenant; panels that read untenanted series (host metrics)
    answer, empty, and never with another tenant's rows."""
    prom, gateway, keys = stack
    at = str(time.time() - 5)  # one evaluation time for both, so sidecar cycles between them do not count
    compared = unscoped = 0
    for tenant in TENANTS:
        for uid, where, expr in targets():
            query = substitute(expr, tenant)
            r = gateway.query(keys[f"{tenant}:read"], query, basic=True, time=at)
            assert r.status_code == 200, (uid, where, r.text)
            through = sorted(map(repr, r.json()["data"]["result"]))
            if tenant_scoped(query, tenant):
                direct = requests.post(
                    f"{prom.url}/api/v1/query", data={"query": query, "time": at}, timeout=30
                )
                assert through == sorted(map(repr, direct.json()["data"]["result"])), (uid, where)
                compared += 1
            else:
                rows = r.json()["data"]["result"]
                assert {row["metric"].get(c.TENANT, tenant) for row in rows} <= {tenant}, (uid, where)
                unscoped += 1
    assert compared >= 100 and compared > 5 * unscoped, (compared, unscoped)
