"""/analytics/dashboards on the real exporter app: list, create, fetch; 422 naming component and field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tenantpulse.exporters.app import create_app
from tenantpulse.exporters.settings import ExporterSettings
from tests.grafana.test_structure import overlaps, panels_of
from tests.support.exporter import write_keys_file

SPEC = {
    "name": "Streaming KPIs",
    "components": [
        {"type": "kpi", "title": "Plays / min", "indicator": "plays_per_minute"},
        {"type": "chart", "indicators": ["request_rate", "errors_per_second"], "width": 18},
        {"type": "anomaly", "indicator": "request_rate"},
    ],
}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    keys = write_keys_file(tmp_path / "keys.yaml", ["t1"])
    app = create_app(ExporterSettings(api_keys_file=tmp_path / "keys.yaml"))
    with TestClient(app) as client:
        yield client, keys


def auth(keys: dict[str, str], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys[name]}"}


def test_post_then_get_and_list(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    r = client.post("/analytics/dashboards", json=SPEC, headers=auth(keys, "admin"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["id"] == "tp-custom-streaming-kpis" and created["panels"] == 3
    board = client.get(f"/analytics/dashboards/{created['id']}", headers=auth(keys, "admin")).json()
    assert board == created["dashboard"]
    assert [p["title"] for p in board["panels"]][:2] == ["Plays / min", "request_rate, errors_per_second"]
    boxes = [p["gridPos"] for p in panels_of(board)]
    assert not any(overlaps(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])

    listed = client.get("/analytics/dashboards", headers=auth(keys, "admin")).json()["dashboards"]
    assert {d["id"] for d in listed} == {"tp-custom-streaming-kpis", "tp-realtime-all"}

    again = client.post("/analytics/dashboards", json={**SPEC, "tags": ["v2"]}, headers=auth(keys, "admin"))
    assert again.status_code == 200 and again.json()["tags"] == ["tenantpulse", "v2"]


def test_bad_spec_is_422_naming_component_and_field(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    bad = {
        **SPEC,
        "components": [*SPEC["components"], {"type": "gauge", "title": "Conv", "indicator": "conv"}],
    }
    r = client.post("/analytics/dashboards", json=bad, headers=auth(keys, "admin"))
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "invalid_spec" and body["field"] == "components[3].indicator"
    assert "unknown indicator" in body["reason"] and "conversion_rate" in body["reason"]
    assert "Conv" not in body["reason"] and "'conv'" not in body["reason"], "what was sent is not echoed"
    listed = client.get("/analytics/dashboards", headers=auth(keys, "admin")).json()["dashboards"]
    assert [d["id"] for d in listed] == ["tp-realtime-all"], "nothing stored from a refused spec"

    r = client.post(
        "/analytics/dashboards",
        json={"name": "x", "layout": "pile", "components": []},
        headers=auth(keys, "admin"),
    )
    assert r.status_code == 422 and r.json()["field"] == "layout"
    r = client.post(
        "/analytics/dashboards",
        content=b"{not json",
        headers={**auth(keys, "admin"), "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and "Traceback" not in r.text


def test_unknown_dashboard_is_404(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    r = client.get("/analytics/dashboards/nope", headers=auth(keys, "admin"))
    assert r.status_code == 404 and r.json()["field"] == "dashboard_id"


def test_scopes(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    assert client.get("/analytics/dashboards").status_code == 401
    # A key bound to one tenant may not read or create dashboards that span every tenant.
    assert client.get("/analytics/dashboards", headers=auth(keys, "t1")).status_code == 403
    assert client.post("/analytics/dashboards", json=SPEC, headers=auth(keys, "t1")).status_code == 403
    assert client.get("/analytics/dashboards/tp-realtime-all", headers=auth(keys, "admin")).status_code == 200
