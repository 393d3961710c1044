"""Tenant isolation on the read path, with real components: the exporter, Prometheus and the gateway.

Three tenants send events and business figures through the exporter's HTTP ingest, each at its own
scale (acme by the unit, globex by the thousand, initech by the hundred thousand) and with event types
of its own, so another tenant's data would show in any number it touched. One Prometheus scrapes
them all (the gateway's backend, with exemplar storage).

The oracle. Once the data is in, that Prometheus takes a TSDB snapshot; for each tenant a second
Prometheus starts on a copy of it and deletes every series but the tenant's (admin API): same samples,
same timestamps, nothing of anyone else. A query a tenant's key may run must then get, through the
gateway from the shared Prometheus, exactly the answer the tenant's own Prometheus gives to the same
text, at the same evaluation time: any sample of another tenant, even one an aggregation or
``label_replace`` stripped of its tenant label, would change a value, a count or a series. The
``tenant`` label (which only the gateway's answer carries for ``absent()``) is set aside before
comparing, and checked on its own: every series of every answer has the caller's tenant or none.

Checked for each tenant's read key: a corpus of hostile queries (every PromQL construct: selectors that
name no tenant, another tenant, every tenant by regex or negation, quoted or escaped; ``or``
alternatives; functions, aggregations ``without (tenant)``, binary operations with ``on``/``ignoring``/
``group_left``, ``label_replace``/``label_join``/``count_values`` writing the tenant label, ``absent``,
subqueries, ``@`` and ``offset``, literals holding braces and quotes) as instant queries and a part of
them as range queries; ``/series``, ``/labels`` and ``/label/<name>/values`` with hostile ``match[]``
and without; exemplars (compared with the admin's direct answer for the query restricted by hand); and
generated queries (hypothesis) compared with the admin's direct answer for the same query with
``tenant="T"`` written in by hand. No other tenant's name may appear in any answer at all.

All of it runs twice: on Prometheus, and on VictoriaMetrics (its snapshot and delete API make the
oracle the same way; the gateway adds ``extra_label`` there too; no exemplars) when
``victoria-metrics`` is installed.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenantpulse.conventions import catalog as c
from tests.support.exporter import Exporter
from tests.support.gateway import Gateway
from tests.support.ports import wait_until
from tests.support.prometheus import Prometheus
from tests.support.victoriametrics import VictoriaMetrics, require_victoriametrics

pytestmark = pytest.mark.integration

TENANTS = ("acme", "globex", "initech")  # names that cannot occur by chance in an answer
SCALE = {"acme": 1, "globex": 1_000, "initech": 100_000}
EVENT_TYPES = {  # per round: how many of each; every tenant has types the others lack
    "acme": {"song_play": 3, "error": 1},
    "globex": {"song_play": 40, "session_start": 7, "error": 3, "globex_only": 2},
    "initech": {"song_play": 400, "session_start": 90, "error": 25, "checkout": 11},
}
DURATION_MS = {"acme": 40, "globex": 400, "initech": 4000}


@dataclass
class World:
    kind: str  # of backend: prometheus or victoriametrics
    exporter: Exporter
    shared: Any  # Prometheus or VictoriaMetrics, scraping every tenant: the gateway's backend
    gateway: Gateway
    oracles: dict[str, Any]  # per tenant: the same kind, on a snapshot of the shared one, only its series
    at: float  # every query is evaluated at this time: inside the snapshot, so all see the same samples
    report: dict[str, int] = field(default_factory=dict)

    def read_key(self, tenant: str) -> str:
        return self.exporter.keys[f"{tenant}:read"]


def _ingest(ex: Exporter, round_: int) -> None:
    for tenant in TENANTS:
        events = [
            {
                "tenant_id": tenant,
                "user_id": f"{tenant}-user-{round_}-{kind}-{i}",
                "event_type": kind,
                "metadata": {"duration_ms": DURATION_MS[tenant] * (1 + i % 3)},
            }
            for kind, n in EVENT_TYPES[tenant].items()
            for i in range(n)
        ]
        business = [
            {
                "tenant_id": tenant,
                "revenue": 7.25 * SCALE[tenant],
                "active_users": 3 * SCALE[tenant] + round_,
                "conversion_rate": {"acme": 0.01, "globex": 0.2, "initech": 0.6}[tenant],
            }
        ]
        ex.post({"events": events, "business": business}, key=tenant)


def _post(url: str, path: str, data: Any) -> requests.Response:
    return requests.post(url + path, data=data, timeout=30)


def _shared(kind: str, work: Path, exporter: Exporter) -> Any:
    jobs = [exporter.scrape_config("tenantpulse")]
    if kind == "victoriametrics":
        return VictoriaMetrics(work / "shared", jobs)
    (work / "shared").mkdir()
    return Prometheus(work / "shared", jobs, extra_args=["--enable-feature=exemplar-storage"])


def _oracle(kind: str, shared: Any, snapshot: str, home: Path, tenant: str) -> Any:
    """A backend of the same kind on a copy of the snapshot, every series but the tenant's deleted."""
    others = {"match[]": f'{{__name__=~".+",tenant!="{tenant}"}}'}
    if kind == "victoriametrics":
        oracle = VictoriaMetrics.from_snapshot(shared, snapshot, home).start()
        assert _post(oracle.url, "/api/v1/admin/tsdb/delete_series", others).status_code == 204
        return oracle
    home.mkdir()
    shutil.copytree(shared.workdir / "data" / "snapshots" / snapshot, home / "data")
    oracle = Prometheus(home, []).start()
    assert _post(oracle.url, "/api/v1/admin/tsdb/delete_series", others).status_code == 204
    assert _post(oracle.url, "/api/v1/admin/tsdb/clean_tombstones", {}).status_code == 204
    return oracle


def _snapshot(kind: str, shared: Any) -> str:
    if kind == "victoriametrics":
        return str(shared.snapshot())
    return str(_post(shared.url, "/api/v1/admin/tsdb/snapshot", {}).json()["data"]["name"])


@pytest.fixture(scope="module", params=["prometheus", "victoriametrics"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    kind = request.param
    if kind == "victoriametrics":
        require_victoriametrics()
    work = tmp_path_factory.mktemp(f"gateway-isolation-{kind}")
    with pytest.MonkeyPatch.context() as mp:  # tracing on in the exporter only: its requests leave exemplars
        mp.setenv("OTEL_TRACES_EXPORTER", "console")
        mp.delenv("OTEL_SDK_DISABLED", raising=False)
        exporter = Exporter(work / "exporter", tenants=TENANTS)
    with exporter, _shared(kind, work, exporter) as shared:
        wait_until(shared.targets_up, timeout=30, what="exporter scraped")
        _ingest(exporter, 1)
        wait_until(lambda: shared.value(c.REVENUE.name, tenant="initech") == 725_000, what="round 1 scraped")
        time.sleep(4)  # a few scrapes between the rounds: rates and increases are not zero
        _ingest(exporter, 2)
        wait_until(
            lambda: shared.value(c.REVENUE.name, tenant="initech") == 1_450_000, what="round 2 scraped"
        )
        wait_until(lambda: shared.value(c.ACTIVE_USERS.name, tenant="acme") == 5, what="gauges scraped")
        time.sleep(3)
        at = round(time.time() - 2, 3)
        snapshot = _snapshot(kind, shared)
        oracles: dict[str, Any] = {}
        try:
            for tenant in TENANTS:
                oracles[tenant] = _oracle(kind, shared, snapshot, work / f"oracle-{tenant}", tenant)
            left = oracles["acme"].query(f'count by (tenant) ({{__name__=~".+"}} @ {at:.3f})')
            assert [row["metric"] for row in left] == [{"tenant": "acme"}], left
            args = ["--backend-kind", kind] if kind == "victoriametrics" else []
            with Gateway(work / "gateway", shared.url, exporter.keys_file, args) as gateway:
                w = World(kind, exporter, shared, gateway, oracles, at)
                yield w
                print(f"\ngateway isolation ({kind}): {json.dumps(w.report, sort_keys=True)}")
        finally:
            for oracle in oracles.values():
                oracle.stop()


# --- comparing answers ----------------------------------------------------------------------------


def _close(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


def _rows(data: Any, tenant: str) -> tuple[str, list[tuple[Any, Any]]]:
    kind, result = data["resultType"], data["result"]
    if kind in ("scalar", "string"):
        return kind, [((), result[1])]
    rows = []
    for series in result:
        labels = {k: v for k, v in series["metric"].items() if not (k == c.TENANT and v == tenant)}
        points = [series["value"]] if kind == "vector" else series["values"]
        rows.append((tuple(sorted(labels.items())), [(t, v) for t, v in points]))
    return kind, sorted(rows, key=lambda r: r[0])


def same_answer(gateway: Any, oracle: Any, tenant: str, ties: bool = False) -> bool:
    """The same series with the same values. ``ties``: for ``topk``/``bottomk``, which of several series
    with equal values is kept is the engine's choice (VictoriaMetrics picks differently run to run), so
    only the values are compared; another tenant's would still show, at its own scale."""
    (kind_a, rows_a), (kind_b, rows_b) = _rows(gateway, tenant), _rows(oracle, tenant)
    if kind_a != kind_b or len(rows_a) != len(rows_b):
        return False
    if ties and kind_a == "vector":
        values_a = sorted(float(points[0][1]) for _, points in rows_a)
        values_b = sorted(float(points[0][1]) for _, points in rows_b)
        return all(_close(str(a), str(b)) for a, b in zip(values_a, values_b, strict=True))
    for (labels_a, points_a), (labels_b, points_b) in zip(rows_a, rows_b, strict=True):
        if kind_a in ("scalar", "string"):
            if labels_a != labels_b or not (points_a == points_b or _close(points_a, points_b)):
                return False
            continue
        if labels_a != labels_b or len(points_a) != len(points_b):
            return False
        if any(ta != tb or not _close(va, vb) for (ta, va), (tb, vb) in zip(points_a, points_b, strict=True)):
            return False
    return True


def series_of(data: Any) -> list[dict[str, str]]:
    if isinstance(data, dict) and data.get("resultType") in ("vector", "matrix"):
        return [s["metric"] for s in data["result"]]
    return []


def check_foreign_names(text: str, tenant: str, where: str, sent: str = "") -> None:
    """No other tenant's name in an answer; unless the caller wrote it and a function such as ``absent()``
    or ``label_replace()`` hands the caller's own text back (never in a refusal's message)."""
    for other in TENANTS:
        if other != tenant and not (other in sent and '"status":"success"' in text):
            assert other not in text, f"{where}: {other!r} appears in the answer: {text[:300]}"


# --- the corpus -----------------------------------------------------------------------------------

# Selectors, with {me} the caller's tenant and {other} another one.
SELECTORS = [
    "tenantpulse_events_total",
    "tenantpulse_revenue_total",
    '{__name__=~".+"}',
    '{__name__!=""}',
    '{__name__=~"tenantpulse_.*"}',
    'tenantpulse_revenue_total{tenant="{me}"}',
    'tenantpulse_revenue_total{tenant="{other}"}',
    'tenantpulse_revenue_total{tenant=~".*"}',
    'tenantpulse_revenue_total{tenant=~".+"}',
    'tenantpulse_revenue_total{tenant!="{me}"}',
    'tenantpulse_revenue_total{tenant!~"{me}"}',
    'tenantpulse_revenue_total{tenant=~"{me}|{other}"}',
    'tenantpulse_revenue_total{tenant=~"{me}"}',
    'tenantpulse_revenue_total{tenant="{me}", tenant=~".*"}',
    '{"tenant"="{other}", __name__="tenantpulse_revenue_total"}',
    "tenantpulse_revenue_total{tenant='{other}'}",
    "tenantpulse_revenue_total{tenant=`{other}`}",
    'tenantpulse_revenue_total{tenant="{other_hex}"}',
    '{__name__="tenantpulse_revenue_total", tenant="{me}" or tenant="{other}"}',
    'tenantpulse_events_total{event_type="x\\"} or tenantpulse_revenue_total{tenant=~\\".+\\"} # "}',
    'tenantpulse_events_total{Tenant="{other}"}',
    '{__name__=~".+", tenant=~"{other}.*"}',
    '{__name__=~".+", tenant=""}',
    '{job=~".+"}',
    "up",
    "tenantpulse_system_cpu_ratio",
    'tenantpulse_events_total{event_type=~"(?i)ERROR|globex_only|checkout"}',
]

WRAPPERS = [
    "{s}",
    "sum({s})",
    "sum without (tenant) ({s})",
    "count({s})",
    "rate({s}[30s])",
    "max_over_time({s}[1m:5s])",
    "{s} offset 10s",
    "{s} @ {at}",
    'label_replace({s}, "copy", "$1", "tenant", "(.*)")',
    "absent({s})",
    "{s} or vector(1)",
    "topk(3, {s})",
    'count_values("v", {s})',
    "group by (tenant) ({s})",
    "increase({s}[1m] offset 5s)",
    "scalar(sum({s}))",
]

EXTRA = [
    'tenantpulse_revenue_total or tenantpulse_revenue_total{tenant="{other}"}',
    "tenantpulse_revenue_total unless tenantpulse_active_users",
    'vector(1) and on () tenantpulse_revenue_total{tenant=~".+"}',
    "tenantpulse_revenue_total * on (job) group_left (tenant) tenantpulse_active_users",
    "sum by (job) (tenantpulse_events_total) / on (job) group_left count by (job) (tenantpulse_events_total)",
    'sum(tenantpulse_revenue_total) + ignoring (tenant) sum(tenantpulse_revenue_total{tenant="{other}"})',
    "sum(tenantpulse_revenue_total) + sum(tenantpulse_active_users)",
    'label_replace(tenantpulse_revenue_total, "tenant", "{other}", "", "")',
    'label_replace(tenantpulse_revenue_total, "tenant", "{me}", "", "")',
    'label_join(tenantpulse_revenue_total, "tenant", "", "job")',
    'count_values("tenant", tenantpulse_active_users)',
    '"{tenant=~\\".+\\"}"',
    '"} or {tenant=~\\".+\\"}"',
    "1 + 2",
    "time()",
    "vector(1)",
    'absent(nonexistent{tenant="{other}"})',
    "absent(nonexistent)",
    "absent_over_time(tenantpulse_revenue_total[1m])",
    "histogram_quantile(0.9, sum by (le) (rate(tenantpulse_event_duration_seconds_bucket[1m])))",
    'histogram_quantile(0.9, sum by (le) (rate(tenantpulse_event_duration_seconds_bucket{tenant=~".+"}[1m])))',
    "histogram_quantile(0.5, sum by (le, tenant) (rate(tenantpulse_ingest_request_duration_seconds_bucket[1m])))",
    "sum by (tenant) (tenantpulse_events_total)",
    'count({__name__!=""})',
    'count by (__name__) ({__name__=~".+"})',
    "max_over_time(sum(rate(tenantpulse_events_total[30s]))[1m:5s])",
    'min_over_time(sum(rate(tenantpulse_events_total{tenant=~"{other}"}[30s]))[1m:5s])',
    "sum(tenantpulse_events_total @ start())",
    'count({__name__=~".+"} @ {at_minus})',
    "timestamp(tenantpulse_active_users)",
    "sort_desc(sum by (event_type) (tenantpulse_events_total))",
    "-tenantpulse_revenue_total",
    "(tenantpulse_revenue_total)",
    "tenantpulse_revenue_total > bool 1000",
    'tenantpulse_revenue_total{tenant="{me}"} + ignoring (tenant) tenantpulse_revenue_total{tenant="{other}"}',
    'sum without (tenant, instance, job) ({__name__=~"tenantpulse_.+"})',
    'info(tenantpulse_revenue_total, {k=~".+"})',
    'tenantpulse_revenue_total # {tenant="{other}"}',
    'tenantpulse_revenue_total{tenant="{me}\\"} or tenantpulse_revenue_total{tenant=\\"{other}"}',
    "quantile(0.5, tenantpulse_active_users)",
    "stddev(tenantpulse_active_users) + count(tenantpulse_events_total)",
    "changes(tenantpulse_active_users[1m])",
    "resets(tenantpulse_events_total[1m])",
    "sum_over_time(count(tenantpulse_events_total)[1m:10s])",
    'sum(tenantpulse_events_total) / sum(tenantpulse_events_total{tenant="{other}"} offset 1m)',
    "predict_linear(tenantpulse_revenue_total[1m], 60)",
    'tenantpulse_revenue_total{__name__="tenantpulse_revenue_total"}',
    'tenantpulse_unique_users{window="1h"} * 2',
]

RANGE_QUERIES = [
    "sum(rate(tenantpulse_events_total[30s]))",
    'sum without (tenant) (rate({__name__=~"tenantpulse_.+_total"}[30s]))',
    "count(tenantpulse_events_total)",
    'label_replace(tenantpulse_revenue_total, "copy", "$1", "tenant", "(.*)")',
    "tenantpulse_active_users or vector(0)",
    'sum(tenantpulse_revenue_total{tenant=~".+"})',
    'tenantpulse_revenue_total{tenant="{other}"}',
    "max_over_time(tenantpulse_revenue_total[1m:5s])",
    "absent(tenantpulse_revenue_total)",
    "sum(tenantpulse_events_total offset 10s) by (event_type)",
]


def hexed(text: str) -> str:
    return "".join(f"\\x{ord(ch):02x}" for ch in text)


def corpus(me: str, other: str, at: float) -> list[str]:
    subs = {
        "{me}": me,
        "{other}": other,
        "{other_hex}": hexed(other),
        "{at_minus}": f"{at - 30:.3f}",
        "{at}": f"{at:.3f}",
    }

    def fill(text: str) -> str:
        for key, value in subs.items():
            text = text.replace(key, value)
        return text

    queries = [fill(w.replace("{s}", s)) for s in SELECTORS for w in WRAPPERS]
    return queries + [fill(q) for q in EXTRA]


def _other(tenant: str) -> str:
    return TENANTS[(TENANTS.index(tenant) + 1) % len(TENANTS)]


# --- the tests ------------------------------------------------------------------------------------


def _outcome(world: World, tenant: str, where: str, r: requests.Response, oracle: requests.Response) -> str:
    """'refused' (403), 'stricter' (the gateway refused what the tenant's own Prometheus runs), 'error'
    (both refuse it) or 'same' (both answer, the same)."""
    check_foreign_names(r.text, tenant, where, sent=where)
    body = r.json()
    if r.status_code != 200:
        assert set(body) == {"status", "errorType", "error"} and body["status"] == "error", where
        if r.status_code == 403:
            assert body["errorType"] == "forbidden", where
            return "refused"
        return "error" if oracle.status_code != 200 else "stricter"
    assert oracle.status_code == 200, (
        f"{where}: the oracle failed ({oracle.text[:200]}), the gateway answered"
    )
    data = body["data"]
    for labels in series_of(data):
        assert labels.get(c.TENANT, tenant) == tenant, f"{where}: a series of another tenant: {labels}"
    ties = "topk(" in where or "bottomk(" in where
    assert same_answer(data, oracle.json()["data"], tenant, ties), (
        f"{where}: differs from the tenant's own Prometheus\n gateway: {r.text[:600]}\n oracle: {oracle.text[:600]}"
    )
    return "same"


def test_hostile_queries_answer_only_from_the_tenants_series(world: World) -> None:
    counts = {"refused": 0, "stricter": 0, "error": 0, "same": 0}
    nonempty = 0
    for i, tenant in enumerate(TENANTS):
        key, oracle = world.read_key(tenant), world.oracles[tenant]
        for n, query in enumerate(corpus(tenant, _other(tenant), world.at)):
            form = {"query": query, "time": f"{world.at:.3f}"}
            basic = (i + n) % 2 == 0  # as Grafana sends it: the key as basic auth password, or a bearer token
            if n % 3 == 0:
                r = world.gateway.get("/api/v1/query", key, basic=basic, **form)
            else:
                r = world.gateway.post("/api/v1/query", key, form, basic=basic)
            direct = requests.post(f"{oracle.url}/api/v1/query", data=form, timeout=30)
            outcome = _outcome(world, tenant, f"{tenant}: {query}", r, direct)
            counts[outcome] += 1
            nonempty += outcome == "same" and bool(r.json()["data"]["result"])
    world.report.update({f"instant_{k}": v for k, v in counts.items()})
    world.report["instant_queries"] = sum(counts.values())
    world.report["instant_nonempty_compared"] = nonempty
    assert sum(counts.values()) >= 3 * 200
    assert counts["refused"] >= 3 * 100 and counts["same"] >= 3 * 100 and nonempty >= 3 * 80, counts


def test_the_oracle_would_see_a_leak(world: World) -> None:
    """Guard against a vacuous pass: the corpus's accepted queries, run unrestricted on the shared
    Prometheus (what a gateway that forgot the tenant would answer), mostly differ from the oracle."""
    differ = compared = 0
    for query in corpus("acme", "globex", world.at):
        form = {"query": query, "time": f"{world.at:.3f}"}
        r = world.gateway.post("/api/v1/query", world.read_key("acme"), form)
        if r.status_code != 200 or not r.json()["data"].get("result"):
            continue
        leaky = requests.post(f"{world.shared.url}/api/v1/query", data=form, timeout=30)
        if leaky.status_code == 200:
            compared += 1
            differ += not same_answer(leaky.json()["data"], r.json()["data"], "acme")
    world.report["leaky_baseline_compared"], world.report["leaky_baseline_differ"] = compared, differ
    # the rest name tenant="acme" themselves or read no series (vector(1), time(), literals)
    assert compared >= 100 and differ >= 0.7 * compared, (compared, differ)


def test_hostile_range_queries(world: World) -> None:
    counts = {"refused": 0, "stricter": 0, "error": 0, "same": 0}
    for tenant in TENANTS:
        oracle = world.oracles[tenant]
        for query in RANGE_QUERIES:
            query = query.replace("{other}", _other(tenant))
            form = {"query": query, "start": f"{world.at - 60:.3f}", "end": f"{world.at:.3f}", "step": "5"}
            r = world.gateway.post("/api/v1/query_range", world.read_key(tenant), form)
            direct = requests.post(f"{oracle.url}/api/v1/query_range", data=form, timeout=30)
            counts[_outcome(world, tenant, f"{tenant} range: {query}", r, direct)] += 1
    world.report.update({f"range_{k}": v for k, v in counts.items()})
    assert counts["same"] >= 3 * 7 and counts["refused"] == 3 * 2, counts


MATCHES = [
    "up",
    "tenantpulse_events_total",
    '{__name__=~".+"}',
    '{tenant=~".+"}',
    '{job="tenantpulse"}',
    '{event_type=~".+"}',
    '{__name__="tenantpulse_revenue_total", tenant="{me}"}',
    '{tenant="{other}"}',
    '{"tenant"="{other}"}',
    '{__name__=~".+", tenant!="{me}"}',
    'tenantpulse_events_total{tenant=~"{me}|{other}"}',
    "rate(tenantpulse_events_total[1m])",  # not a series selector
]
LABELS = ["tenant", "__name__", "event_type", "job", "window", "le"]


def test_series_and_label_endpoints_with_hostile_match(world: World) -> None:
    counts = {"refused": 0, "bad": 0, "same": 0}
    span = {"start": f"{world.at - 120:.3f}", "end": f"{world.at:.3f}"}

    def compare(tenant: str, path: str, params: list[tuple[str, str]]) -> None:
        r = world.gateway.session.get(
            world.gateway.url + path,
            params=params,
            headers={"Authorization": f"Bearer {world.read_key(tenant)}"},
            timeout=30,
        )
        where = f"{tenant} {path} {params}"
        check_foreign_names(r.text, tenant, where, sent=where)
        if r.status_code == 403:
            counts["refused"] += 1
            return
        if r.status_code == 400:
            assert r.json()["errorType"] == "bad_data", where
            counts["bad"] += 1
            return
        assert r.status_code == 200, where
        oracle = world.oracles[tenant].url
        got = r.json()["data"]
        if path.endswith("/series"):
            assert all(s.get(c.TENANT) == tenant for s in got), where
        if world.kind == "victoriametrics" and not path.endswith("/series"):
            # VictoriaMetrics' label index keeps deleted series' names and values: the oracle's label
            # answers are derived from its /series answer (which drops deleted series) instead.
            selected = [v for k, v in params if k == "match[]"] or ['{__name__=~".+"}']
            span_params = [(k, v) for k, v in params if k != "match[]"]
            found = requests.post(
                oracle + "/api/v1/series",
                data=[*(("match[]", m) for m in selected), *span_params],
                timeout=30,
            ).json()["data"]
            if path.endswith("/labels"):
                want: Any = sorted({name for series in found for name in series} | {"__name__"})
                got = sorted(set(got) | {"__name__"})  # VictoriaMetrics names __name__ even with no series
            else:
                label = path.split("/")[-2]
                want = sorted({series[label] for series in found if label in series})
        else:
            direct = requests.get(oracle + path, params=params, timeout=30)
            assert direct.status_code == 200, where
            want = direct.json()["data"]
        if path.endswith("/series"):
            got, want = sorted(map(json.dumps, got)), sorted(map(json.dumps, want))
        assert got == want, f"{where}\n gateway: {str(got)[:400]}\n oracle: {str(want)[:400]}"
        counts["same"] += 1

    for tenant in TENANTS:
        matches = [m.replace("{me}", tenant).replace("{other}", _other(tenant)) for m in MATCHES]
        for match in matches:
            compare(tenant, "/api/v1/series", [("match[]", match), *span.items()])
            compare(tenant, "/api/v1/labels", [("match[]", match), *span.items()])
            for label in LABELS[:3]:
                compare(tenant, f"/api/v1/label/{label}/values", [("match[]", match), *span.items()])
        compare(tenant, "/api/v1/series", [("match[]", "up"), ("match[]", matches[7]), *span.items()])
        compare(tenant, "/api/v1/labels", list(span.items()))  # no match[]: the tenant's series
        for label in LABELS:
            compare(tenant, f"/api/v1/label/{label}/values", list(span.items()))
    world.report.update({f"match_{k}": v for k, v in counts.items()})
    assert counts["same"] >= 3 * 30 and counts["refused"] >= 3 * 5, counts


def test_exemplars_are_the_tenants_own(world: World) -> None:
    if world.kind == "victoriametrics":
        pytest.skip("VictoriaMetrics 1.79 stores no exemplars")
    span = {"start": f"{world.at - 600:.3f}", "end": f"{world.at:.3f}"}
    found = 0
    for tenant in TENANTS:
        key = world.read_key(tenant)
        for query in ('{__name__=~".+_bucket"}', c.INGEST_REQUEST_DURATION.sample("bucket")):
            r = world.gateway.post("/api/v1/query_exemplars", key, {"query": query, **span})
            assert r.status_code == 200, r.text
            check_foreign_names(r.text, tenant, f"exemplars {query}")
            got = r.json()["data"]
            assert got and all(s["seriesLabels"][c.TENANT] == tenant for s in got)
            by_hand = (
                query.replace("}", f', tenant="{tenant}"}}')
                if "{" in query
                else f'{query}{{tenant="{tenant}"}}'
            )
            direct = requests.post(
                f"{world.shared.url}/api/v1/query_exemplars", data={"query": by_hand, **span}, timeout=30
            )
            want = direct.json()["data"]
            assert sorted(map(json.dumps, got)) == sorted(map(json.dumps, want))
            found += sum(len(s["exemplars"]) for s in got)
        hostile = {"query": '{__name__=~".+_bucket", tenant=~".+"}', **span}
        r = world.gateway.post("/api/v1/query_exemplars", key, hostile)
        assert r.status_code == 403 and "data" not in r.json()
    world.report["exemplars_seen"] = found
    assert found >= 3


def test_admin_keys_pass_through(world: World) -> None:
    query = {"query": "sum by (tenant) (tenantpulse_revenue_total)", "time": f"{world.at:.3f}"}
    r = world.gateway.post("/api/v1/query", world.exporter.keys["admin"], query)
    direct = requests.post(f"{world.shared.url}/api/v1/query", data=query, timeout=30)
    assert r.status_code == 200 and r.json() == direct.json()
    assert sorted(row["metric"]["tenant"] for row in r.json()["data"]["result"]) == sorted(TENANTS)
    values = world.gateway.get("/api/v1/label/tenant/values", world.exporter.keys["admin"]).json()["data"]
    assert set(TENANTS) <= set(values)


# --- generated queries ----------------------------------------------------------------------------

METRICS = [
    "tenantpulse_events_total",
    "tenantpulse_revenue_total",
    "tenantpulse_active_users",
    "tenantpulse_conversion_ratio",
    "tenantpulse_event_duration_seconds_bucket",
    "tenantpulse_event_duration_seconds_count",
]
MATCHERS = [
    'event_type="song_play"',
    'event_type=~"s.*"',
    'event_type!="error"',
    'job="tenantpulse"',
    'le="+Inf"',
]


@dataclass(frozen=True)
class Sel:
    metric: str
    matchers: tuple[str, ...]

    def render(self, tenant: str | None) -> str:
        parts = ([f'tenant="{tenant}"'] if tenant else []) + list(self.matchers)
        return f"{self.metric}{{{','.join(parts)}}}" if parts else self.metric


Node = Any  # a tuple tree: ("sel", Sel) | ("range", fn, Sel, window) | ("agg", ...) | ...


def render(node: Node, tenant: str | None) -> str:
    kind = node[0]
    if kind == "sel":
        return node[1].render(tenant)
    if kind == "offset":
        return f"{node[1].render(tenant)} offset {node[2]}"
    if kind == "range":
        _, fn, sel, window = node
        return f"{fn}({sel.render(tenant)}[{window}])"
    if kind == "agg":
        _, op, grouping, inner = node
        return f"{op}{grouping}({render(inner, tenant)})"
    if kind == "topk":
        return f"topk({node[1]}, {render(node[2], tenant)})"
    if kind == "bin":
        _, op, modifier, lhs, rhs = node
        return f"({render(lhs, tenant)}) {op}{modifier} ({render(rhs, tenant)})"
    if kind == "fn":
        return f"{node[1]}({render(node[2], tenant)})"
    if kind == "sub":
        _, fn, inner, window, step = node
        return f"{fn}(({render(inner, tenant)})[{window}:{step}])"
    if kind == "num":
        return node[1]
    raise AssertionError(node)


selectors = st.builds(
    Sel, st.sampled_from(METRICS), st.lists(st.sampled_from(MATCHERS), max_size=2, unique=True).map(tuple)
)
leaves = st.one_of(
    selectors.map(lambda s: ("sel", s)),
    st.tuples(st.just("offset"), selectors, st.sampled_from(["5s", "20s", "1m"])),
    st.tuples(
        st.just("range"),
        st.sampled_from(["rate", "increase", "delta", "max_over_time", "count_over_time", "changes"]),
        selectors,
        st.sampled_from(["15s", "30s", "1m"]),
    ),
)


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.one_of(
        st.tuples(
            st.just("agg"),
            st.sampled_from(["sum", "max", "min", "count", "avg", "group", "stddev"]),
            st.sampled_from(
                ["", " by (tenant)", " by (event_type)", " without (tenant)", " without (instance, job)"]
            ),
            children,
        ),
        st.tuples(st.just("topk"), st.sampled_from(["1", "3"]), children),
        st.tuples(
            st.just("bin"),
            st.sampled_from(["+", "*", "/", ">", "or", "and", "unless"]),
            st.sampled_from(["", " on (tenant)", " ignoring (event_type)", " on ()"]),
            children,
            st.one_of(children, st.sampled_from(["1", "0.5", "1000"]).map(lambda n: ("num", n))),
        ),
        st.tuples(
            st.just("fn"), st.sampled_from(["abs", "ceil", "sort", "timestamp", "absent", "-"]), children
        ),
        st.tuples(
            st.just("sub"),
            st.sampled_from(["max_over_time", "avg_over_time", "count_over_time"]),
            children,
            st.sampled_from(["30s", "1m"]),
            st.sampled_from(["5s", "10s", ""]),
        ),
    )


queries = st.recursive(leaves, _extend, max_leaves=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=queries, tenant=st.sampled_from(TENANTS))
def test_generated_queries_match_the_query_restricted_by_hand(world: World, tree: Node, tenant: str) -> None:
    plain, by_hand = render(tree, None), render(tree, tenant)
    when = {"time": f"{world.at:.3f}"}
    r = world.gateway.post("/api/v1/query", world.read_key(tenant), {"query": plain, **when})
    direct = requests.post(f"{world.shared.url}/api/v1/query", data={"query": by_hand, **when}, timeout=30)
    check_foreign_names(r.text, tenant, plain, sent=plain)
    if world.kind == "victoriametrics" and r.status_code == 400 and r.json()["error"].startswith("query"):
        # MetricsQL accepts more than PromQL (``x + on (tenant) 1``); the gateway's parser is PromQL's.
        world.report["generated_stricter"] = world.report.get("generated_stricter", 0) + 1
        return
    assert r.status_code == direct.status_code, (
        f"{plain}\n gateway: {r.text[:300]}\n direct: {direct.text[:300]}"
    )
    if direct.status_code == 200:
        ties = "topk(" in plain
        assert same_answer(r.json()["data"], direct.json()["data"], tenant, ties), (
            f"{plain}\n gateway: {r.text[:400]}\n by hand: {direct.text[:400]}"
        )
    world.report["generated"] = world.report.get("generated", 0) + 1
    world.report["generated_ok"] = world.report.get("generated_ok", 0) + (direct.status_code == 200)
