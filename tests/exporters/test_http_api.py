"""The exporter's HTTP API in-process: ingest forms, reads, exposition, health, request ids, OpenAPI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tenantpulse.conventions import catalog as c
from tests.support.exporter import app_client, bearer, sample_value


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with app_client(tmp_path) as pair:
        yield pair


def test_single_event_batch_and_ndjson_all_count(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    h = bearer(keys["t1"])
    single = {"tenant_id": "t1", "user_id": "u1", "event_type": "song_play", "metadata": {"duration_ms": 250}}
    r = client.post("/analytics/metrics", json=single, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["accepted_events"] == 1

    batch = {
        "events": [{"tenant_id": "t1", "user_id": f"u{i}", "event_type": "song_play"} for i in range(4)],
        "business": [{"tenant_id": "t1", "revenue": 2.5, "active_users": 40, "conversion_rate": 0.05}],
    }
    r = client.post("/analytics/metrics", json=batch, headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["accepted_events"], r.json()["accepted_business"]) == (4, 1)

    lines = [
        {"tenant_id": "t1", "event_type": "error", "metadata": {"duration_seconds": 0.5}},
        {"tenant_id": "t1", "revenue": 1.5},
    ]
    body = "\n".join(json.dumps(x) for x in lines) + "\n\n"
    r = client.post("/analytics/metrics", content=body, headers={**h, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    assert (r.json()["accepted_events"], r.json()["accepted_business"]) == (1, 1)

    snap = client.get("/analytics/metrics/t1", headers=h).json()
    assert snap["events"] == {"song_play": 5.0, "error": 1.0}
    assert snap["revenue"] == pytest.approx(4.0)
    assert snap["active_users"] == 40.0
    assert snap["event_durations"]["song_play"]["sum_seconds"] == pytest.approx(0.25)
    assert snap["unique_users"]["1h"] == pytest.approx(4, abs=0.5)  # u0..u3 (u1 twice)

    text = client.get("/metrics", params={"tenant": "t1"}).text
    assert sample_value(text, c.EVENTS.name, tenant="t1", event_type="song_play") == 5.0
    assert sample_value(text, c.REVENUE.name, tenant="t1") == pytest.approx(4.0)


def test_metrics_per_tenant_and_openmetrics(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    for tenant in ("t1", "t2"):
        client.post(
            "/analytics/metrics",
            json={"tenant_id": tenant, "event_type": "song_play"},
            headers=bearer(keys[tenant]),
        ).raise_for_status()
    everything = client.get("/metrics")
    assert everything.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'tenant="t1"' in everything.text and 'tenant="t2"' in everything.text
    only_t2 = client.get("/metrics", params={"tenant": "t2"}).text
    assert 'tenant="t2"' in only_t2 and 'tenant="t1"' not in only_t2
    om = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.rstrip().endswith("# EOF")
    assert f"# TYPE {c.EVENTS.family} counter" in om.text
    assert client.get("/metrics", params={"tenant": "nobody"}).status_code == 200


def test_unknown_tenant_read_is_404_after_authorisation(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    r = client.get("/analytics/metrics/t3", headers=bearer(keys["t3"]))
    assert r.status_code == 404
    assert r.json()["field"] == "tenant_id"
    # Another tenant's key learns nothing about t3, not even whether it exists.
    assert client.get("/analytics/metrics/t3", headers=bearer(keys["t1"])).status_code == 403


def test_aggregated_sums_tenants_for_admin(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    for tenant, n in (("t1", 3), ("t2", 2)):
        events = [{"tenant_id": tenant, "event_type": "song_play"}] * n
        client.post(
            "/analytics/metrics", json={"events": events}, headers=bearer(keys[tenant])
        ).raise_for_status()
    agg = client.get("/analytics/metrics/aggregated", headers=bearer(keys["admin"])).json()
    assert agg["tenants"] == 2
    assert agg["events"]["song_play"] == 5.0


def test_health_and_request_ids(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = api
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}
    mine = client.get("/healthz", headers={"X-Request-ID": "trace-me-123"})
    assert mine.headers["x-request-id"] == "trace-me-123"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert generated.headers["x-request-id"] != "bad id\nwith newline"
    assert len(generated.headers["x-request-id"]) == 32
    missing = client.get("/no/such/path")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    assert missing.json()["request_id"] == missing.headers["x-request-id"]


def test_readyz_is_503_before_startup(tmp_path: Path) -> None:
    from tenantpulse.exporters.app import create_app
    from tenantpulse.exporters.settings import ExporterSettings
    from tests.support.exporter import write_keys_file

    write_keys_file(tmp_path / "k.yaml", ["t1"])
    client = TestClient(create_app(ExporterSettings(api_keys_file=tmp_path / "k.yaml")))  # no lifespan
    assert client.get("/readyz").status_code == 503


def test_openapi_describes_every_endpoint(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = api
    doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    expected = {
        ("/analytics/metrics", "post"),
        ("/analytics/metrics/{tenant_id}", "get"),
        ("/analytics/metrics/aggregated", "get"),
        ("/metrics", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    }
    assert expected <= {(p, m) for p, ops in paths.items() for m in ops}
    ingest = paths["/analytics/metrics"]["post"]
    content = ingest["requestBody"]["content"]
    assert {"application/json", "application/x-ndjson"} <= set(content)
    refs = {s["$ref"].rsplit("/", 1)[1] for s in content["application/json"]["schema"]["oneOf"]}
    assert refs == {"EventIn", "BusinessIn", "BatchIn"}
    schemas = doc["components"]["schemas"]
    assert refs <= set(schemas)
    assert schemas["EventIn"]["additionalProperties"] is False
    assert {"200", "401", "403", "413", "422", "429"} <= set(ingest["responses"])
    for path, method in expected:
        assert "200" in paths[path][method]["responses"], (path, method)
    assert "HTTPBearer" in json.dumps(doc["components"].get("securitySchemes", {}))


def test_405_lists_every_method_of_the_path_across_routers(tmp_path: Path) -> None:
    from fastapi import APIRouter

    from tenantpulse.exporters.app import create_app
    from tenantpulse.exporters.settings import ExporterSettings
    from tests.support.exporter import write_keys_file

    write_keys_file(tmp_path / "k.yaml", ["t1"])
    app = create_app(ExporterSettings(api_keys_file=tmp_path / "k.yaml"))
    router = APIRouter()
    router.add_api_route("/things", lambda: {"listed": True}, methods=["GET"])
    router.add_api_route("/things", lambda: {"made": True}, methods=["POST"])
    app.include_router(router)  # what a part listed in ROUTER_MODULES gets
    client = TestClient(app)
    r = client.delete("/things")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, POST"
    assert r.json()["error"] == "method_not_allowed"
    assert client.put("/analytics/metrics").headers["allow"] == "POST"


def test_unexpected_errors_answer_json_500_and_keep_serving(tmp_path: Path) -> None:
    from tenantpulse.exporters.app import create_app
    from tenantpulse.exporters.settings import ExporterSettings
    from tests.support.exporter import write_keys_file

    write_keys_file(tmp_path / "k.yaml", ["t1"])
    app = create_app(ExporterSettings(api_keys_file=tmp_path / "k.yaml"))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("disk on fire")

    client = TestClient(app)
    r = client.get("/boom", headers={"X-Request-ID": "req-boom-1"})
    assert r.status_code == 500
    assert r.json() == {
        "error": "internal_error",
        "reason": "internal error; see the server log",
        "request_id": "req-boom-1",
    }
    assert "Traceback" not in r.text and "disk on fire" not in r.text
    assert client.get("/healthz").status_code == 200
