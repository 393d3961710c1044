"""Error answers never echo input: hostile, unique markers in every part of a request to every route of
both apps (the exporter with its KPI, alerts, dashboards and erasure routers, and the sidecar) never
come back in a 4xx answer, body or headers (regression: 403/404/415/413/429 answers, spec errors and
pydantic's messages repeated tenant ids, names, content types and values).

The routes are read from each app's ``/openapi.json``, so a new route without hostile requests here
fails the test instead of escaping it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from fastapi.testclient import TestClient

from tenantpulse.alert_rules.store import AlertStore
from tenantpulse.anomaly_sidecar.app import create_app
from tenantpulse.security.keys import KeyRing
from tests.anomaly_sidecar.test_service import World, make_service
from tests.security.test_isolation import DOCS, operations
from tests.support.exporter import app_client, bearer
from tests.support.prometheus import require
from tests.support.sidecar import FakePrometheusApi

TOKEN = secrets.token_hex(8)
MARK = f"ECHO-{TOKEN}"  # a valid tenant id: it reaches the checks that used to name the tenant
BAD = [f"{MARK}'\"<>{{}}[]", f" {MARK}\n", MARK * 300]  # quotes and brackets, white space, oversized
KEY = f"Echo_{TOKEN}"  # a valid metadata key that is not a plain lower-case name
GOOD = {"tenant_id": "t1", "user_id": "u1", "event_type": "song_play"}
ALERT = {"name": "Probe", "condition": "error_rate > 0.1"}
COMPONENT = {"type": "kpi", "indicator": "request_rate"}
KPI = {"name": "queue_depth", "value": 1}
PUBLIC = {("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics")}  # the sidecar's: answer 200


@dataclass
class Case:
    method: str
    route: str  # the OpenAPI path it exercises
    path: str | None = None  # default: the route
    key: str | None = "admin"
    params: dict[str, str] | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def run(client: TestClient, keys: dict[str, str], cases: list[Case], public: set[tuple[str, str]]) -> None:
    covered = {(c.method, c.route) for c in cases}
    missing = [op for op in operations(client) if op not in covered and op[1] not in DOCS]
    assert not missing, f"routes without hostile requests in this test: {missing}"
    for case in cases:
        headers = {**(bearer(keys[case.key]) if case.key else {}), **case.headers}
        r = client.request(
            case.method,
            case.path or case.route,
            params=case.params,
            json=case.json,
            content=case.content,
            headers=headers,
        )
        where = f"{case.method.upper()} {case.path or case.route} {case.json or case.content or case.params}"
        if (case.method, case.route) in public:
            assert r.status_code == 200, f"{where}: {r.status_code}"
        else:
            assert 400 <= r.status_code < 500, f"{where}: {r.status_code} {r.text[:300]}"
            body = r.json()
            assert body["error"] and body["reason"] and "Traceback" not in r.text, where
        assert TOKEN not in r.text, f"{where}: the answer echoes the input: {r.text[:500]}"
        assert TOKEN not in str(r.headers), f"{where}: a header echoes the input: {r.headers}"


def ingest(**kwargs: Any) -> Case:
    return Case("post", "/analytics/metrics", key=kwargs.pop("key", "t1"), **kwargs)


def alert(body: Any, method: str = "post", alert_id: str | None = None) -> Case:
    route = "/analytics/alerts" + ("/{alert_id}" if alert_id is not None else "")
    path = "/analytics/alerts" + (f"/{quote(alert_id)}" if alert_id is not None else "")
    return Case(method, route, path, json=body)


def kpi(body: Any, key: str = "t1") -> Case:
    return Case("post", "/analytics/kpis", key=key, json=body)


def routing(body: Any) -> Case:
    return Case("put", "/analytics/alert-routing", json=body)


def dashboard(body: Any) -> Case:
    return Case("post", "/analytics/dashboards", json=body)


TEST_INPUTS = {"tenant": "a", "value": 1, "firing": [{"series": 'up{tenant="a"}', "values": "1+0x30"}]}
EXPORTER_CASES = [
    # POST /analytics/metrics: tenants, types, sizes, keys, content types, broken JSON, limits
    ingest(json={**GOOD, "tenant_id": MARK}),
    *(ingest(json={**GOOD, "tenant_id": bad}) for bad in BAD),
    *(ingest(json={**GOOD, "event_type": bad}) for bad in BAD),
    ingest(json={**GOOD, "user_id": MARK * 30}),
    ingest(json={**GOOD, "tenant_id": [MARK]}),
    ingest(json={**GOOD, "event_type": {MARK: MARK}}),
    ingest(json={**GOOD, MARK: MARK}),
    ingest(json={**GOOD, KEY: 1}),
    ingest(json={**GOOD, "metadata": {MARK: 1}}),
    ingest(json={**GOOD, "metadata": {KEY: {"x": MARK}}}),
    ingest(json={**GOOD, "metadata": {"note": MARK * 30}}),
    ingest(json={**GOOD, "metadata": {f"k{i}": MARK for i in range(40)}}),
    ingest(json={"tenant_id": "t1", "revenue": MARK}),
    ingest(json={"business": [{"tenant_id": "t1", "revenue": 1, MARK: 2}]}),
    ingest(json={"events": [GOOD, {**GOOD, "tenant_id": MARK}]}),
    ingest(json={"events": [GOOD], "business": [{"tenant_id": MARK, "revenue": 1}]}),
    ingest(json={"events": [GOOD], MARK: []}),
    ingest(json={"events": [GOOD] * 5 + [{**GOOD, "user_id": MARK}] * 300}),  # over --max-body-bytes
    ingest(json={"events": [{**GOOD, "tenant_id": MARK}] * 6}, key="admin"),  # over the burst
    ingest(json={**GOOD, "tenant_id": f"{MARK}-spent"}, key="admin"),  # over the rate (see setup)
    ingest(content=f'{{"tenant_id": "{MARK}", "user_id": '.encode()),
    ingest(content=f'{{"events": [{{"tenant_id": "{MARK}"'.encode()),
    ingest(
        content=json.dumps(GOOD).encode() + b"\n{" + MARK.encode(),
        headers={"Content-Type": "application/x-ndjson"},
    ),
    ingest(
        content=json.dumps({**GOOD, "tenant_id": MARK}).encode(),
        headers={"Content-Type": "application/x-ndjson"},
    ),
    ingest(json=GOOD, headers={"Content-Type": f"application/{MARK}"}),
    ingest(json=GOOD, key=None, headers={"Authorization": f"Bearer {MARK}"}),
    ingest(json=GOOD, key=None, headers={"Authorization": f"{MARK} {MARK}"}),
    # reads
    Case("get", "/analytics/metrics/aggregated", key="t1", params={MARK: MARK}),
    Case("get", "/analytics/metrics/{tenant_id}", f"/analytics/metrics/{MARK}", key="t1"),
    Case("get", "/analytics/metrics/{tenant_id}", f"/analytics/metrics/{MARK}-unknown"),  # 404
    Case("get", "/analytics/metrics/{tenant_id}", f"/analytics/metrics/{quote(BAD[0])}"),
    Case("get", "/metrics", key="t1", params={"tenant": MARK}),
    *(Case("get", "/metrics", params={"tenant": bad}) for bad in BAD),
    Case("get", "/metrics", key=None, headers={"Authorization": f"Bearer {MARK}"}),
    Case("get", "/healthz", key=None, params={MARK: MARK}),
    Case("get", "/readyz", key=None, params={MARK: MARK}),
    Case("get", "/healthz/{x}", f"/healthz/{MARK}"),  # 404
    Case("post", "/readyz", key=None, params={MARK: MARK}),  # 405
    # alerts
    Case("get", "/analytics/alerts", key="t1", params={MARK: MARK}),
    Case("get", "/analytics/alerts/{alert_id}", f"/analytics/alerts/{MARK}"),
    Case("get", "/analytics/alerts/{alert_id}", f"/analytics/alerts/{quote(BAD[0])}"),
    Case("delete", "/analytics/alerts/{alert_id}", f"/analytics/alerts/{MARK}"),
    alert({"condition": "error_rate > 1"}, "put", MARK),
    alert({"name": MARK}, "put", "HighErrors"),
    alert({"condition": f"error_rate[{MARK}] > 0.1"}, "put", "HighErrors"),
    alert({"name": MARK, "condition": "error_rate > 0.1"}),
    alert({"name": "Probe", "condition": f"{MARK} > 1"}),
    alert({"name": "Probe", "condition": f"Echo_{TOKEN} > 1"}),
    alert({"name": "Probe", "condition": f"error_rate {MARK} 1"}),
    alert({"name": "Probe", "condition": f"error_rate > {MARK}"}),
    alert({**ALERT, "for": MARK}),
    alert({**ALERT, "severity": MARK}),
    alert({**ALERT, "tenants": [BAD[0]]}),
    alert({**ALERT, "channels": [MARK]}),
    alert({**ALERT, "actions": [MARK]}),
    alert({**ALERT, "summary": "{{ " + MARK + " }}"}),
    alert({**ALERT, "summary": "{{ " + MARK}),
    alert({**ALERT, "runbook_url": {MARK: 1}}),
    alert({**ALERT, MARK: 1}),
    alert({**ALERT, "labels": {MARK: "x"}}),
    alert({**ALERT, "labels": {"team": {MARK: 1}}}),
    alert({"name": "HighErrors", "condition": "error_rate > 0.1", "description": MARK}),  # 409
    alert({"name": "Probe", "expr": f"sum(rate({MARK}[5m])) >", "test": TEST_INPUTS}),  # promtool
    alert({"name": "Probe", "model": MARK, "threshold": 0.9}),
    alert({"name": "Probe", "model": "request_rate", "sensitivity": MARK}),
    alert([MARK]),
    Case(
        "post",
        "/analytics/alerts",
        content=b'{"name": "' + MARK.encode(),
        headers={"Content-Type": "application/json"},
    ),
    # alert routing: channels, actions, routing
    Case("get", "/analytics/alert-routing", key="t1", params={MARK: MARK}),
    *(routing(body) for body in ({MARK: 1}, {KEY: 1}, {KEY.lower(): 1}, [MARK], {"channels": {MARK: {}}})),
    routing({"channels": {"email": {"to": MARK, "from": MARK, "smarthost": MARK}}}),
    routing({"channels": {"slack": {"api_url_file": {MARK: 1}}}}),
    routing({"actions": {MARK: {"url": MARK}}}),
    routing({"routing": {"default_receiver": MARK}}),
    routing({"routing": {"group_wait": MARK}}),
    Case(
        "put",
        "/analytics/alert-routing",
        content=b'{"channels": "' + MARK.encode(),
        headers={"Content-Type": "application/json"},
    ),
    # dashboards
    Case("get", "/analytics/dashboards", key="t1", params={MARK: MARK}),
    Case("get", "/analytics/dashboards/{dashboard_id}", f"/analytics/dashboards/{MARK}"),
    dashboard({"name": MARK, "layout": MARK, "components": [COMPONENT]}),
    dashboard({"name": MARK, "components": [{"type": MARK}]}),
    dashboard({"name": MARK, "components": [{**COMPONENT, "indicator": MARK, "title": MARK}]}),
    dashboard({"name": MARK, "components": [{**COMPONENT, MARK: 1}]}),
    dashboard({"name": MARK, "components": [{**COMPONENT, "title": {MARK: 1}}]}),
    dashboard({"name": MARK, "components": [{**COMPONENT, "width": MARK}]}),
    dashboard({"name": MARK, "components": [{"type": "chart", "indicators": [MARK]}]}),
    dashboard({"name": MARK, "components": [{"type": "chart", "metric": MARK}]}),
    dashboard({"name": MARK, "uid": BAD[0], "components": [COMPONENT]}),
    dashboard({"name": MARK, "tags": [MARK, 1], "components": [COMPONENT]}),
    dashboard({"name": {MARK: 1}, "components": [COMPONENT]}),
    dashboard({"name": MARK, MARK: 1, "components": [COMPONENT]}),
    dashboard(MARK),
    # custom KPIs
    kpi({"tenant_id": MARK, "values": [KPI]}),
    *(kpi({"tenant_id": bad, "values": [KPI]}) for bad in BAD),
    *(kpi({"tenant_id": "t1", "values": [{**KPI, "name": bad}]}) for bad in [MARK, *BAD]),
    kpi({"tenant_id": "t1", "values": [{**KPI, "value": MARK}]}),
    kpi({"tenant_id": "t1", "values": [{**KPI, "type": MARK}]}),
    kpi({"tenant_id": "t1", "values": [{**KPI, "op": MARK}]}),
    kpi({"tenant_id": "t1", "values": [{**KPI, "help": MARK * 20}]}),
    kpi({"tenant_id": "t1", "values": [{**KPI, "labels": {MARK: "x"}}]}),
    kpi({"tenant_id": "t1", "values": [{**KPI, "labels": {KEY: "x"}}]}),
    kpi({"tenant_id": "t1", "values": [{**KPI, "labels": {"region": BAD[1]}}]}),
    kpi({"tenant_id": "t1", "values": [{**KPI, "labels": {"region": {MARK: 1}}}]}),
    kpi({"tenant_id": "t1", "values": [{**KPI, MARK: 1}]}),
    kpi({"tenant_id": "t1", "values": [KPI], MARK: 1}),
    kpi({"tenant_id": "t1", "values": [{**KPI, "name": f"k_{i}"} for i in range(6)]}, "admin"),  # burst
    Case(
        "post",
        "/analytics/kpis",
        key="t1",
        json={"tenant_id": "t1", "values": [KPI]},
        headers={"Content-Type": f"application/{MARK}"},
    ),
    Case(
        "post",
        "/analytics/kpis",
        key="t1",
        content=b'{"tenant_id": "' + MARK.encode(),
        headers={"Content-Type": "application/json"},
    ),
    Case("get", "/analytics/kpis", key="t1", params={"tenant_id": MARK}),
    *(Case("get", "/analytics/kpis", key="t1", params={"tenant_id": bad}) for bad in BAD),
    # erasure
    Case("delete", "/analytics/tenants/{tenant_id}", f"/analytics/tenants/{MARK}", key="t1"),
    Case("delete", "/analytics/tenants/{tenant_id}", f"/analytics/tenants/{quote(BAD[0])}"),
    Case("get", "/analytics/tenants/{tenant_id}", f"/analytics/tenants/{MARK}"),  # 405
]


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    require("promtool")
    spec, rules = tmp_path / "alerts.yaml", tmp_path / "rules"
    seed = {"defaults": {"runbook_base": "https://rb.example"}, "alerts": [{**ALERT, "name": "HighErrors"}]}
    spec.write_text(yaml.safe_dump(seed))
    AlertStore(spec, rules)._apply(seed)
    settings = {
        "alerts_spec": spec,
        "rules_out": rules,
        "alertmanager_out": tmp_path / "am",
        "metrics_auth": "required",
        "max_body_bytes": 20_000,
    }
    with app_client(tmp_path, rate_limit=0.001, rate_burst=5, **settings) as (client, keys):
        spent = {"events": [{**GOOD, "tenant_id": f"{MARK}-spent"}] * 5}  # its whole burst
        client.post("/analytics/metrics", json=spent, headers=bearer(keys["admin"])).raise_for_status()
        yield client, keys


def test_exporter_error_answers_never_echo_input(exporter: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = exporter
    run(client, keys, EXPORTER_CASES, public={("get", "/healthz"), ("get", "/readyz")})


def train(body: Any, key: str = "t7") -> Case:
    return Case("post", "/analytics/ml/train", key=key, json=body)


def predict(body: Any, key: str = "t7") -> Case:
    return Case(
        "post", "/analytics/ml/predict", key=key, json={"tenant_id": "t7", "indicator": "error_rate", **body}
    )


SIDECAR_CASES = [
    Case("get", "/analytics/ml/models", key="t7", params={"tenant_id": MARK}),
    *(Case("get", "/analytics/ml/models", key="t7", params={"tenant_id": bad}) for bad in BAD),
    Case("get", "/analytics/ml/models", key=None, headers={"Authorization": f"Bearer {MARK}"}),
    train({"tenant_id": MARK}),
    *(train({"tenant_id": bad}) for bad in BAD),
    train({"tenant_id": {MARK: 1}}),
    train({"tenant_id": "t7", "indicators": [MARK]}),
    train({"tenant_id": "t7", "indicators": MARK}),
    train({"tenant_id": "t7", "window": MARK}),
    train({"tenant_id": "t7", "window": f"1{MARK}"}),
    train({"tenant_id": "t7", "window": {MARK: 1}}),
    train({"tenant_id": "t7", MARK: 1}),
    train({"tenant_id": "t7", KEY: 1}),
    train([MARK]),
    Case(
        "post",
        "/analytics/ml/train",
        key="t7",
        content=b'{"tenant_id": "' + MARK.encode(),
        headers={"Content-Type": "application/json"},
    ),
    predict({"tenant_id": MARK}),
    predict({"indicator": MARK}),
    *(predict({field: MARK}) for field in ("horizon", "history", "step", "confidence_interval")),
    predict({"horizon": "1" + MARK}),
    predict({MARK: MARK}),
    Case("delete", "/analytics/tenants/{tenant_id}", f"/analytics/tenants/{MARK}", key="t7"),
    Case("delete", "/analytics/tenants/{tenant_id}", f"/analytics/tenants/{quote(BAD[0])}"),
    Case("get", "/metrics", key=None, params={"tenant": MARK}),
    Case("get", "/healthz", key=None, params={MARK: MARK}),
    Case("get", "/readyz", key=None, params={MARK: MARK}),
    Case("get", "/analytics/ml/{x}", f"/analytics/ml/{MARK}"),  # 404
    Case("delete", "/healthz", key=None, params={MARK: MARK}),  # 405
]


def test_sidecar_error_answers_never_echo_input(tmp_path: Path) -> None:
    keys = {"t7": "echo-t7", "admin": "echo-admin"}
    entries = [
        {"key": keys["t7"], "tenant": "t7", "scopes": ["read", "write"], "id": "t7"},
        {"key": keys["admin"], "tenant": "*", "scopes": ["admin"], "id": "admin"},
    ]
    (tmp_path / "keys.yaml").write_text(yaml.safe_dump({"keys": entries}))
    with FakePrometheusApi(World(["t7", "t8"]).answer) as fake:
        service = make_service(fake)
        service.backfill(60.0)
        service.cycle()
        service.ready.set()
        app = create_app(service, KeyRing.from_file(tmp_path / "keys.yaml"), run_loop=False)
        with TestClient(app) as client:
            run(client, keys, SIDECAR_CASES, public=PUBLIC)
