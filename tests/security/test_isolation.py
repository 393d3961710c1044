"""Tenant isolation matrix: every operation of the OpenAPI document x every key x every tenant.

Each operation has an access rule (public, a scope on the path/body/query tenant, or a scope on all
tenants). For every (operation, key, tenant) the answer must be 401 without a valid key, 403 when the
rule refuses the key, and otherwise a non-auth answer; a key bound to one tenant must never see another
tenant's id in an answer it was given. The operations are read from each app's ``/openapi.json``, so
a new endpoint without a rule here fails the test instead of escaping it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from tenantpulse.alert_rules.store import AlertStore
from tenantpulse.anomaly_sidecar.app import create_app
from tenantpulse.security.keys import ANY_TENANT, ApiKey, KeyRing
from tests.anomaly_sidecar.test_service import World, make_service
from tests.support.exporter import app_client, bearer
from tests.support.sidecar import FakePrometheusApi

TENANTS = ("acme", "globex", "initech")  # names that cannot occur by chance in an answer
PUBLIC = "public"
ALLOWED = {
    200,
    201,
    404,
    409,
    422,
    503,
}  # past the auth check: found / created / not found / invalid / unconfigured
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}

# (method, path) -> (scope, where the tenant comes from: "path" | "body" | "query" | "all"), or PUBLIC.
EXPORTER_RULES: dict[tuple[str, str], Any] = {
    ("post", "/analytics/metrics"): ("write", "body"),
    ("get", "/analytics/metrics/aggregated"): ("admin", "all"),
    ("get", "/analytics/metrics/{tenant_id}"): ("read", "path"),
    ("get", "/metrics"): ("read", "query"),  # with --metrics-auth required
    ("get", "/healthz"): PUBLIC,
    ("get", "/readyz"): PUBLIC,
    ("get", "/analytics/alerts"): ("admin", "all"),
    ("post", "/analytics/alerts"): ("admin", "all"),
    ("get", "/analytics/alerts/{alert_id}"): ("admin", "all"),
    ("put", "/analytics/alerts/{alert_id}"): ("admin", "all"),
    ("delete", "/analytics/alerts/{alert_id}"): ("admin", "all"),
    ("get", "/analytics/alert-routing"): ("admin", "all"),
    ("put", "/analytics/alert-routing"): ("admin", "all"),
    ("get", "/analytics/dashboards"): ("read", "all"),
    ("post", "/analytics/dashboards"): ("admin", "all"),
    ("get", "/analytics/dashboards/{dashboard_id}"): ("read", "all"),
    ("delete", "/analytics/tenants/{tenant_id}"): ("admin", "path"),
    ("post", "/analytics/kpis"): ("write", "body"),
    ("get", "/analytics/kpis"): ("read", "query"),
}
SIDECAR_RULES: dict[tuple[str, str], Any] = {
    ("get", "/metrics"): PUBLIC,
    ("get", "/healthz"): PUBLIC,
    ("get", "/readyz"): PUBLIC,
    ("get", "/analytics/ml/models"): ("read", "query"),
    ("post", "/analytics/ml/train"): ("write", "body"),
    ("post", "/analytics/ml/predict"): ("read", "body"),
    ("delete", "/analytics/tenants/{tenant_id}"): ("admin", "path"),
}


def operations(client: TestClient) -> list[tuple[str, str]]:
    doc = client.get("/openapi.json").json()
    ops = [
        (m, p)
        for p, item in doc["paths"].items()
        for m in item
        if m in ("get", "post", "put", "delete", "patch")
    ]
    # Erasure last: it removes the data the other operations read.
    return sorted(ops, key=lambda op: op == ("delete", "/analytics/tenants/{tenant_id}"))


def expected_allowed(key: ApiKey, tenant: str, scope: str, source: str) -> bool:
    """The policy, written out independently of ``tenantpulse.web.auth``: '*' admin keys may do anything;
    other keys only their scopes on their own tenant, and nothing that spans all tenants."""
    if key.tenant == ANY_TENANT and "admin" in key.scopes:
        return True
    if source == "all":
        return key.tenant == ANY_TENANT and scope in key.scopes
    return key.tenant == tenant and scope in key.scopes


def check_matrix(
    client: TestClient,
    rules: dict[tuple[str, str], Any],
    keys: dict[str, str],
    ring: KeyRing,
    request: Callable[[str, str, str, dict[str, str]], Any],
    tenants: tuple[str, ...] = TENANTS,
) -> int:
    """Run every (operation, key, tenant); returns the number of requests made."""
    ops = operations(client)
    unknown = [op for op in ops if op not in rules and op[1] not in DOCS]
    assert not unknown, f"operations without an access rule in this test: {unknown}"
    credentials = {**{name: bearer(k) for name, k in keys.items()}, "none": {}, "bogus": bearer("bogus-key")}
    n = 0
    for (method, path), (name, headers), tenant in itertools.product(ops, credentials.items(), tenants):
        if path in DOCS:
            continue
        r = request(method, path, tenant, headers)
        n += 1
        rule = rules[(method, path)]
        where = f"{method.upper()} {path} tenant={tenant} key={name}: {r.status_code} {r.text[:200]}"
        key = ring.authenticate(keys[name]) if name in keys else None
        if rule == PUBLIC:
            assert r.status_code == 200, where
            continue
        scope, source = rule
        if key is None:
            assert r.status_code == 401, where
            assert r.headers.get("www-authenticate") == "Bearer", where
            continue
        ok = expected_allowed(key, tenant, scope, source)
        if not ok:
            assert r.status_code == 403, where
            assert set(r.json()) <= {"error", "field", "reason", "request_id", "detail"}, where
            continue
        assert r.status_code in ALLOWED, where
        if key.tenant != ANY_TENANT:
            others = [t for t in tenants if t != key.tenant]
            assert not any(t in r.text for t in others), f"another tenant's id leaked: {where}"
    return n


@pytest.fixture
def exporter_client(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    spec, rules = tmp_path / "alerts.yaml", tmp_path / "rules"
    seed = {
        "defaults": {"runbook_base": "https://rb.example"},
        "alerts": [{"name": "HighErrors", "condition": "error_rate > 0.05", "severity": "critical"}],
    }
    spec.write_text(yaml.safe_dump(seed))
    AlertStore(spec, rules)._apply(seed)
    with app_client(tmp_path, TENANTS, alerts_spec=spec, rules_out=rules, metrics_auth="required") as (
        client,
        keys,
    ):
        for t in TENANTS:  # data for every tenant, with user ids that must never come back
            body = {"tenant_id": t, "user_id": f"user-of-{t}", "event_type": "song_play"}
            client.post("/analytics/metrics", json=body, headers=bearer(keys[t])).raise_for_status()
        yield client, keys


def test_exporter_isolation_matrix(
    exporter_client: tuple[TestClient, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client, keys = exporter_client
    ring = KeyRing.from_file(tmp_path / "exporter-keys.yaml")

    def request(method: str, path: str, tenant: str, headers: dict[str, str]) -> Any:
        url = path.replace("{tenant_id}", tenant).replace("{alert_id}", "HighErrors")
        url = url.replace("{dashboard_id}", "no-such-board")
        if path == "/analytics/metrics":
            return client.post(
                url, json={"tenant_id": tenant, "user_id": "u", "event_type": "x"}, headers=headers
            )
        if path == "/metrics":
            return client.get(url, params={"tenant": tenant}, headers=headers)
        if path == "/analytics/kpis":
            if method == "get":
                return client.get(url, params={"tenant_id": tenant}, headers=headers)
            body = {"tenant_id": tenant, "values": [{"name": "iso_kpi", "value": 1}]}
            return client.post(url, json=body, headers=headers)
        if method in ("post", "put"):
            return client.request(method, url, json={"name": "HighErrors", "bad": 1}, headers=headers)
        return client.request(method, url, headers=headers)

    n = check_matrix(client, EXPORTER_RULES, keys, ring, request)
    # All-tenant /metrics needs an all-tenant key; tenant keys get 403 without a tenant.
    assert client.get("/metrics", headers=bearer(keys["acme"])).status_code == 403
    assert client.get("/metrics", headers=bearer(keys["admin"])).status_code == 200
    print(f"exporter isolation matrix: {n} requests")


SIDECAR_TENANTS = ("t7", "t8", "t9")  # the scripted Prometheus (World) derives values from "t<k>"


def test_sidecar_isolation_matrix(tmp_path: Path) -> None:
    keys = {t: f"iso-{t}" for t in SIDECAR_TENANTS} | {"t7:read": "iso-t7-read", "admin": "iso-admin"}
    entries = [{"key": keys[t], "tenant": t, "scopes": ["read", "write"], "id": t} for t in SIDECAR_TENANTS]
    entries += [
        {"key": keys["t7:read"], "tenant": "t7", "scopes": ["read"], "id": "t7:read"},
        {"key": keys["admin"], "tenant": "*", "scopes": ["admin"], "id": "admin"},
    ]
    (tmp_path / "keys.yaml").write_text(yaml.safe_dump({"keys": entries}))
    ring = KeyRing.from_file(tmp_path / "keys.yaml")
    with FakePrometheusApi(World(list(SIDECAR_TENANTS)).answer) as fake:
        service = make_service(fake)
        service.backfill(60.0)
        service.cycle()
        service.ready.set()
        with TestClient(create_app(service, ring, run_loop=False)) as client:

            def request(method: str, path: str, tenant: str, headers: dict[str, str]) -> Any:
                if path == "/analytics/ml/models":
                    return client.get(path, params={"tenant_id": tenant}, headers=headers)
                if path == "/analytics/ml/train":
                    body = {"tenant_id": tenant, "indicators": ["error_rate"], "window": "30s"}
                    return client.post(path, json=body, headers=headers)
                if path == "/analytics/ml/predict":
                    body = {"tenant_id": tenant, "indicator": "error_rate", "horizon": "1m", "history": "2m"}
                    return client.post(path, json=body, headers=headers)
                return client.request(method, path.replace("{tenant_id}", tenant), headers=headers)

            # Without tenant_id a tenant key sees only its own models.
            own = client.get("/analytics/ml/models", headers=bearer(keys["t8"])).json()["models"]
            assert own and {m["tenant_id"] for m in own} == {"t8"}
            n = check_matrix(client, SIDECAR_RULES, keys, ring, request, SIDECAR_TENANTS)
            print(f"sidecar isolation matrix: {n} requests")
