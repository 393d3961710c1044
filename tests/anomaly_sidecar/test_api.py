"""The sidecar's HTTP API in-process (TestClient) over a service reading a scripted Prometheus API:
keys and tenants, 422 naming the field, train/predict/models, probes, /metrics, the OpenAPI document;
and the seed's Python facade."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tenantpulse.anomaly_sidecar.app import create_app
from tenantpulse.anomaly_sidecar.facade import AnomalyDetector, PredictiveAnalytics
from tenantpulse.anomaly_sidecar.reader import PrometheusReader
from tenantpulse.conventions import catalog as c
from tenantpulse.security.keys import KeyRing
from tests.anomaly_sidecar.test_service import TENANTS, WATCH, World, make_service
from tests.support.sidecar import FakePrometheusApi

KEYS = {
    "t1": "key-t1-rw",
    "t1:read": "key-t1-read",
    "t2": "key-t2-rw",
    "admin": "key-admin",
}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, World]]:
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(
        "keys:\n"
        f"  - {{key: {KEYS['t1']}, tenant: t1, scopes: [read, write]}}\n"
        f"  - {{key: {KEYS['t1:read']}, tenant: t1, scopes: [read]}}\n"
        f"  - {{key: {KEYS['t2']}, tenant: t2, scopes: [read, write]}}\n"
        f"  - {{key: {KEYS['admin']}, tenant: '*', scopes: [admin]}}\n"
    )
    world = World(TENANTS)
    with FakePrometheusApi(world.answer) as fake:
        service = make_service(fake)
        service.backfill(60.0)
        service.cycle()
        service.ready.set()
        with TestClient(create_app(service, KeyRing.from_file(keys_file), run_loop=False)) as client:
            yield client, world


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


def test_probes_and_metrics_need_no_key(api: tuple[TestClient, World]) -> None:
    client, _ = api
    assert client.get("/healthz").json()["stale"] is False
    assert client.get("/readyz").status_code == 200
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert r.text.count(c.ANOMALY_SCORE.name + "{") == len(TENANTS) * len(WATCH)


def test_models_are_scoped_to_the_keys_tenant(api: tuple[TestClient, World]) -> None:
    client, _ = api
    own = client.get("/analytics/ml/models", headers=auth("t1:read")).json()
    assert {m["tenant_id"] for m in own["models"]} == {"t1"}
    assert {m["indicator"] for m in own["models"]} == set(WATCH)
    m = own["models"][0]
    assert m["observations"] == 62 and m["warming_up"] is False and m["lower"] <= m["expected"] <= m["upper"]
    assert own["threshold"] > 0 and own["sensitivity"] == "medium"
    everything = client.get("/analytics/ml/models", headers=auth("admin")).json()["models"]
    assert len(everything) == len(TENANTS) * len(WATCH)
    r = client.get("/analytics/ml/models", params={"tenant_id": "t2"}, headers=auth("t1"))
    assert r.status_code == 403 and r.json()["field"] == "tenant_id"


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer nope"}, 401), ({"Authorization": "Basic eDp5"}, 401)],
)
def test_missing_or_unknown_key_is_401(
    api: tuple[TestClient, World], headers: dict[str, str], status: int
) -> None:
    client, _ = api
    r = client.get("/analytics/ml/models", headers=headers)
    assert r.status_code == status
    assert r.json()["field"] == "Authorization" and r.headers["www-authenticate"] == "Bearer"


def test_errors_have_the_exporters_body(
    api: tuple[TestClient, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    """tenantpulse.web: the same body as the exporter (no null fields, the request id), for 401, 404,
    405, 503 and an unhandled error alike, and an X-Request-Id on every answer."""
    client, _ = api
    r = client.get("/analytics/ml/models", headers={"X-Request-Id": "req-1"})
    assert r.status_code == 401 and r.headers["x-request-id"] == "req-1"
    assert r.json() == {
        "error": "unauthorized",
        "field": "Authorization",
        "reason": "send an API key as 'Authorization: Bearer <key>'",
        "request_id": "req-1",
    }
    r = client.get("/no/such/route")
    assert r.status_code == 404 and r.json()["error"] == "not_found" and r.json()["request_id"]
    r = client.put("/analytics/ml/train", headers=auth("t1"))
    assert r.status_code == 405 and r.headers["allow"] == "POST" and r.json()["error"] == "method_not_allowed"
    r = client.post("/analytics/ml/train", json={"tenant_id": "t1", "window": "soon"}, headers=auth("t1"))
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "window"
    assert not r.json()["reason"].startswith("Value error")


def test_an_unhandled_error_is_a_json_500(
    api: tuple[TestClient, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = api
    from tenantpulse.anomaly_sidecar.service import SidecarService

    def broken(self: SidecarService, tenant: str | None = None) -> list[dict]:
        raise RuntimeError("boom")

    monkeypatch.setattr(SidecarService, "models", broken)
    r = client.get("/analytics/ml/models", headers=auth("t1"))
    assert r.status_code == 500 and "boom" not in r.text and "Traceback" not in r.text
    assert r.json()["error"] == "internal_error" and r.json()["request_id"] == r.headers["x-request-id"]


def test_readyz_is_503_until_backfill_is_done(api: tuple[TestClient, World]) -> None:
    client, _ = api
    service = client.app.state.service  # type: ignore[attr-defined]
    service.ready.clear()
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["error"] == "not_ready" and r.json()["reason"]
    service.ready.set()
    assert client.get("/readyz").json() == {"ready": True}


def test_train_relearns_a_tenants_models(api: tuple[TestClient, World]) -> None:
    client, _ = api
    r = client.post(
        "/analytics/ml/train",
        json={"tenant_id": "t1", "indicators": ["error_rate"], "window": "2m"},
        headers=auth("t1"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["samples_learned"] == 121 and body["indicators"] == ["error_rate"]
    assert [m["observations"] for m in body["models"]] == [121]  # forgotten, then 2 min at 1 s steps
    untouched = client.get("/analytics/ml/models", headers=auth("t1")).json()["models"]
    assert {m["indicator"]: m["observations"] for m in untouched}["request_rate"] == 62


def test_train_needs_write_scope_on_that_tenant(api: tuple[TestClient, World]) -> None:
    client, _ = api
    assert (
        client.post("/analytics/ml/train", json={"tenant_id": "t1"}, headers=auth("t1:read")).status_code
        == 403
    )
    assert client.post("/analytics/ml/train", json={"tenant_id": "t1"}, headers=auth("t2")).status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tenant_id": "t1", "window": "soon"}, "window"),
        ({"tenant_id": "t1", "indicators": ["request_rate", "bogus"]}, "indicators[1]"),
        ({"tenant_id": "t 1"}, "tenant_id"),
        ({"tenant_id": "t1", "extra": 1}, "extra"),
        ({}, "tenant_id"),
    ],
)
def test_bad_train_body_is_422_naming_the_field(
    api: tuple[TestClient, World], body: dict, field: str
) -> None:
    client, _ = api
    r = client.post("/analytics/ml/train", json=body, headers=auth("admin"))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and r.json()["error"] == "invalid_input" and r.json()["reason"]


def test_predict_forecasts_with_an_interval(api: tuple[TestClient, World]) -> None:
    client, world = api
    body = {"tenant_id": "t1", "indicator": "request_rate", "horizon": "1m", "confidence_interval": 0.9,
            "history": "5m", "step": "5s"}  # fmt: skip
    r = client.post("/analytics/ml/predict", json=body, headers=auth("t1:read"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["step_seconds"] == 5 and out["history_points"] == 61 and len(out["forecast"]) == 12
    last = out["forecast"][-1]
    assert last["lower"] < last["mean"] < last["upper"]
    assert last["mean"] == pytest.approx(world.value("t1", "request_rate", last["timestamp"]), rel=0.1)
    assert out["model"]["tenant_id"] == "t1" and out["model"]["indicator"] == "request_rate"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (
            {"tenant_id": "t1", "indicator": "request_rate", "confidence_interval": 1.5},
            422,
            "confidence_interval",
        ),
        ({"tenant_id": "t1", "indicator": "nope"}, 422, "indicator"),
        ({"tenant_id": "t1", "indicator": "request_rate", "horizon": "-1h"}, 422, "horizon"),
        ({"tenant_id": "t2", "indicator": "request_rate"}, 403, "tenant_id"),
    ],
)
def test_bad_predict_requests(api: tuple[TestClient, World], body: dict, status: int, field: str) -> None:
    client, _ = api
    r = client.post("/analytics/ml/predict", json=body, headers=auth("t1"))
    assert r.status_code == status, r.text
    assert r.json()["field"] == field


def test_predict_when_prometheus_is_down_is_503(api: tuple[TestClient, World]) -> None:
    client, world = api
    world.down = True
    r = client.post(
        "/analytics/ml/predict", json={"tenant_id": "t1", "indicator": "request_rate"}, headers=auth("t1")
    )
    assert r.status_code == 503 and r.json()["error"] == "prometheus_unavailable"


def test_openapi_describes_every_route(api: tuple[TestClient, World]) -> None:
    client, _ = api
    doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    for path, method in [
        ("/metrics", "get"), ("/healthz", "get"), ("/readyz", "get"), ("/analytics/ml/models", "get"),
        ("/analytics/ml/train", "post"), ("/analytics/ml/predict", "post"),
    ]:  # fmt: skip
        assert method in paths[path], path
    assert "requestBody" in paths["/analytics/ml/train"]["post"]
    for code in ("200", "401", "403", "422"):
        assert code in paths["/analytics/ml/predict"]["post"]["responses"]
    assert (
        "TrainRequest" in doc["components"]["schemas"] and "PredictResponse" in doc["components"]["schemas"]
    )


def test_facade_detect_and_forecast() -> None:
    world = World(TENANTS)
    with FakePrometheusApi(world.answer) as fake:
        reader = PrometheusReader(fake.url)
        world.by_expr |= {k.replace("[10s]", "[5m]"): v for k, v in world.by_expr.items()}  # facade's window
        detector = AnomalyDetector(reader=reader, step="1s", context="5m")
        calm = detector.detect("t1", metrics=["request_rate"], window="1m")["request_rate"]
        assert 60 <= calm.times.size <= 61 and calm.anomalies == [] and calm.score_now is not None
        since = time.time() - 20
        world.spike("t1", since)
        spiked = detector.detect("t1", metrics=["request_rate"], window="1m")["request_rate"]
        assert spiked.anomalies and min(spiked.anomalies) >= since - 1  # found where it starts, not before
        world.spiking.clear()
        f = PredictiveAnalytics(reader=reader).forecast(
            "request_rate", horizon="1m", confidence_interval=0.95, history="5m", step="10s"
        )
        assert set(f) == set(TENANTS)
        assert (f["t3"].lower <= f["t3"].mean).all() and (f["t3"].mean <= f["t3"].upper).all()
        with pytest.raises(KeyError, match="valid"):
            PredictiveAnalytics(reader=reader).forecast("nope")


def test_predict_with_too_little_history_says_how_much_it_needs(api: tuple[TestClient, World]) -> None:
    client, world = api
    world.since = time.time() - 3 * 3600  # a Prometheus that has held samples for three hours
    body = {"tenant_id": "t1", "indicator": "request_rate", "horizon": "30d"}
    r = client.post("/analytics/ml/predict", json=body, headers=auth("t1:read"))
    assert r.status_code == 409, r.text
    out = r.json()
    assert out["error"] == "insufficient_history" and out["field"] == "horizon"
    assert "30d forecast needs at least 7d12h of history" in out["reason"] and "t1" in out["reason"]
    assert out["detail"][0]["needed_seconds"] == 7.5 * 86400
    assert 2 * 3600 <= out["detail"][0]["have_seconds"] <= 4 * 3600
    r = client.post("/analytics/ml/predict", json=body | {"horizon": "6h"}, headers=auth("t1:read"))
    assert r.status_code == 200 and len(r.json()["forecast"]) == 6 * 3600 / 45  # 6h ahead needs 1h30m
