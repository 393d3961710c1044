"""Tenant isolation: every key x every tenant x read/write, written out as the expected answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from tenantpulse.exporters.app import create_app
from tenantpulse.exporters.settings import ExporterSettings
from tenantpulse.security.keys import sha256_hex

KEYS = {
    "t1_rw": {"tenant": "t1", "scopes": ["read", "write"]},
    "t1_read": {"tenant": "t1", "scopes": ["read"]},
    "t1_write": {"tenant": "t1", "scopes": ["write"]},
    "t2_rw": {"tenant": "t2", "scopes": ["read", "write"]},
    "star_rw": {"tenant": "*", "scopes": ["read", "write"]},
    "admin": {"tenant": "*", "scopes": ["admin"]},
    "t1_admin": {"tenant": "t1", "scopes": ["admin"]},
    "expired": {"tenant": "t1", "scopes": ["read", "write"], "expires": "2020-01-01T00:00:00Z"},
}
NO_KEY = {"unknown": "not-a-key", "none": None, "basic": None}

# caller -> {(tenant, op): status}; "ok" is 200.
R, W = "read", "write"
ALL_OK = {(t, op): 200 for t in ("t1", "t2") for op in (R, W)}
ALL_401 = {(t, op): 401 for t in ("t1", "t2") for op in (R, W)}
EXPECTED: dict[str, dict[tuple[str, str], int]] = {
    "t1_rw": {("t1", R): 200, ("t1", W): 200, ("t2", R): 403, ("t2", W): 403},
    "t1_read": {("t1", R): 200, ("t1", W): 403, ("t2", R): 403, ("t2", W): 403},
    "t1_write": {("t1", R): 403, ("t1", W): 200, ("t2", R): 403, ("t2", W): 403},
    "t2_rw": {("t1", R): 403, ("t1", W): 403, ("t2", R): 200, ("t2", W): 200},
    "star_rw": ALL_OK,
    "admin": ALL_OK,
    "t1_admin": {("t1", R): 200, ("t1", W): 200, ("t2", R): 403, ("t2", W): 403},
    "expired": ALL_401,
    "unknown": ALL_401,
    "none": ALL_401,
    "basic": ALL_401,
}
AGGREGATED = {"admin": 200, "star_rw": 403, "t1_admin": 403, "t1_rw": 403, "t2_rw": 403, "unknown": 401}


def headers_for(caller: str) -> dict[str, str]:
    if caller == "none":
        return {}
    if caller == "basic":
        return {"Authorization": "Basic dXNlcjpwYXNz"}
    return {"Authorization": f"Bearer {caller}-secret" if caller in KEYS else "Bearer not-a-key"}


def write_keys(path: Path) -> Path:
    entries = []
    for name, spec in KEYS.items():
        # Half the keys as plain keys, half as SHA-256 hashes: both forms must authenticate.
        secret = f"{name}-secret"
        form = {"key": secret} if len(entries) % 2 else {"key_sha256": sha256_hex(secret)}
        entries.append({**form, "id": name, **spec})
    path.write_text(yaml.safe_dump({"keys": entries}))
    return path


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = ExporterSettings(api_keys_file=write_keys(tmp_path / "keys.yaml"), metrics_auth="required")
    with TestClient(create_app(settings)) as c:
        for tenant in ("t1", "t2"):  # both tenants have data, so a read is 200 (not 404) when allowed
            body = {"tenant_id": tenant, "event_type": "seed"}
            c.post("/analytics/metrics", json=body, headers=headers_for("admin")).raise_for_status()
        yield c


def seeded_count(client: TestClient, tenant: str) -> float:
    snap = client.get(f"/analytics/metrics/{tenant}", headers=headers_for("admin")).json()
    return snap["events"].get("probe", 0.0)


@pytest.mark.parametrize("caller", list(EXPECTED))
def test_isolation_matrix(client: TestClient, caller: str) -> None:
    for (tenant, op), status in EXPECTED[caller].items():
        before = seeded_count(client, tenant)
        if op == R:
            r = client.get(f"/analytics/metrics/{tenant}", headers=headers_for(caller))
        else:
            body = {"tenant_id": tenant, "user_id": "u", "event_type": "probe"}
            r = client.post("/analytics/metrics", json=body, headers=headers_for(caller))
        assert r.status_code == status, (caller, tenant, op, r.text)
        if status == 401:
            assert r.headers["WWW-Authenticate"] == "Bearer"
        if status >= 400:
            assert r.json()["error"] in ("unauthorized", "forbidden")
        if op == R and status == 200:
            assert r.json()["tenant"] == tenant
        if op == W:
            assert seeded_count(client, tenant) == before + (1 if status == 200 else 0)


@pytest.mark.parametrize(("caller", "status"), AGGREGATED.items())
def test_aggregated_needs_an_all_tenant_admin_key(client: TestClient, caller: str, status: int) -> None:
    assert client.get("/analytics/metrics/aggregated", headers=headers_for(caller)).status_code == status


def test_a_batch_naming_another_tenant_is_refused_whole(client: TestClient) -> None:
    before = seeded_count(client, "t1")
    mixed = {
        "events": [
            {"tenant_id": "t1", "event_type": "probe"},
            {"tenant_id": "t2", "event_type": "probe"},
        ]
    }
    r = client.post("/analytics/metrics", json=mixed, headers=headers_for("t1_rw"))
    assert r.status_code == 403
    assert r.json()["field"] == "events[1].tenant_id"
    assert seeded_count(client, "t1") == before
    business = {"business": [{"tenant_id": "t2", "revenue": 5}]}
    r = client.post("/analytics/metrics", json=business, headers=headers_for("t1_rw"))
    assert (r.status_code, r.json()["field"]) == (403, "business[0].tenant_id")


@pytest.mark.parametrize(
    ("caller", "tenant", "status"),
    [
        ("none", "t1", 401),
        ("t1_read", "t1", 200),
        ("t1_read", "t2", 403),
        ("t1_read", None, 403),
        ("t1_write", "t1", 403),
        ("star_rw", None, 200),
        ("admin", None, 200),
    ],
)
def test_metrics_auth_when_required(client: TestClient, caller: str, tenant: str | None, status: int) -> None:
    params = {"tenant": tenant} if tenant else {}
    r = client.get("/metrics", params=params, headers=headers_for(caller))
    assert r.status_code == status, r.text
    if status == 200 and tenant == "t1":
        assert 'tenant="t1"' in r.text and 'tenant="t2"' not in r.text
