"""Bad input to the ingest API: a 4xx JSON answer naming the field, nothing half-applied, no traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tenantpulse.conventions import catalog as c
from tenantpulse.exporters.limits import TenantRateLimiter
from tests.support.exporter import app_client, bearer, sample_value

GOOD = {"tenant_id": "t1", "user_id": "u1", "event_type": "song_play"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with app_client(tmp_path, max_body_bytes=20_000, max_series_per_tenant=60) as pair:
        yield pair


def events_of(client: TestClient, key: str, tenant: str = "t1") -> dict[str, float]:
    r = client.get(f"/analytics/metrics/{tenant}", headers=bearer(key))
    return r.json()["events"] if r.status_code == 200 else {}


CASES: list[tuple[str, Any, str, int, str]] = [
    # (name, JSON body or raw bytes, content type, status, field)
    ("malformed json", b'{"tenant_id": "t1",', "application/json", 422, "body"),
    ("not an object", b"[1, 2]", "application/json", 422, "body"),
    ("malformed batch", b'{"events": [{"tenant_id": "t1"', "application/json", 422, "body"),
    ("batch bad utf-8", b'{"events": [{"tenant_id": "\xff"}]}', "application/json", 422, "body"),
    ("invalid utf-8", b'{"tenant_id": "\xff"}', "application/json", 422, "body"),
    ("missing event_type", {"tenant_id": "t1"}, "application/json", 422, "event_type"),
    ("unknown field", {**GOOD, "colour": "red"}, "application/json", 422, "colour"),
    ("wrong type", {**GOOD, "event_type": 7}, "application/json", 422, "event_type"),
    ("string for number", {"tenant_id": "t1", "revenue": "5"}, "application/json", 422, "revenue"),
    ("negative revenue", {"tenant_id": "t1", "revenue": -1}, "application/json", 422, "revenue"),
    (
        "conversion above 1",
        {"tenant_id": "t1", "conversion_rate": 1.5},
        "application/json",
        422,
        "conversion_rate",
    ),
    ("tenant bad chars", {**GOOD, "tenant_id": 't1"}'}, "application/json", 422, "tenant_id"),
    ("event type too long", {**GOOD, "event_type": "e" * 65}, "application/json", 422, "event_type"),
    ("event type bad chars", {**GOOD, "event_type": "play\n"}, "application/json", 422, "event_type"),
    ("label value quote", {**GOOD, "event_type": 'a"b'}, "application/json", 422, "event_type"),
    ("user id too long", {**GOOD, "user_id": "u" * 257}, "application/json", 422, "user_id"),
    ("nested metadata", {**GOOD, "metadata": {"x": {"y": 1}}}, "application/json", 422, "metadata.x"),
    (
        "batch item wrong",
        {"events": [GOOD, GOOD, {**GOOD, "event_type": ""}]},
        "application/json",
        422,
        "events[2].event_type",
    ),
    ("batch unknown key", {"events": [GOOD], "extra": []}, "application/json", 422, "extra"),
    ("empty batch", {"events": [], "business": []}, "application/json", 422, "body"),
    ("business nothing", {"business": [{"tenant_id": "t1"}]}, "application/json", 422, "business[0]"),
    (
        "ndjson bad line",
        (json.dumps(GOOD) + "\n" + "{oops\n").encode(),
        "application/x-ndjson",
        422,
        "lines[1]",
    ),
    (
        "ndjson wrong field",
        (json.dumps(GOOD) + "\n\n" + json.dumps({**GOOD, "tenant_id": ""})).encode(),
        "application/x-ndjson",
        422,
        "lines[2].tenant_id",
    ),
    ("ndjson empty", b"\n\n", "application/x-ndjson", 422, "body"),
    ("form content type", b"a=b", "application/x-www-form-urlencoded", 415, "Content-Type"),
    ("oversized body", {"events": [GOOD] * 400}, "application/json", 413, "body"),
]


@pytest.mark.parametrize(("name", "body", "ctype", "status", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_whole_with_the_field_named(
    api: tuple[TestClient, dict[str, str]], name: str, body: Any, ctype: str, status: int, field: str
) -> None:
    client, keys = api
    h = {**bearer(keys["t1"]), "Content-Type": ctype}
    client.post(
        "/analytics/metrics", json={"events": [GOOD, GOOD]}, headers=bearer(keys["t1"])
    ).raise_for_status()
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = client.post("/analytics/metrics", content=content, headers=h)
    assert r.status_code == status, r.text
    err = r.json()
    assert err["field"] == field, err
    assert err["reason"] and "Traceback" not in r.text
    assert err["request_id"] == r.headers["x-request-id"]
    # The events accepted before are still there, and nothing of the refused body was applied.
    assert events_of(client, keys["t1"]) == {"song_play": 2.0}


def test_detail_never_echoes_input(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    r = client.post(
        "/analytics/metrics",
        json={**GOOD, "user_id": "secret-user-" + "x" * 300},
        headers=bearer(keys["t1"]),
    )
    assert r.status_code == 422
    assert "secret-user" not in r.text


def test_series_cap_refuses_the_whole_batch(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    h = bearer(keys["t1"])
    client.post("/analytics/metrics", json={"events": [GOOD]}, headers=h).raise_for_status()
    # Each new event type is a series; 60 is the cap for this app, so this batch cannot fit.
    many = [{"tenant_id": "t1", "event_type": f"kind_{i}"} for i in range(70)]
    r = client.post("/analytics/metrics", json={"events": [GOOD, *many]}, headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["field"].startswith("events[")
    assert "limit" in r.json()["reason"]
    assert events_of(client, keys["t1"]) == {"song_play": 1.0}
    rejected = client.get("/metrics", params={"tenant": "t1"}).text
    assert sample_value(rejected, c.INGEST_REJECTED.name, tenant="t1", reason="invalid") == 1


def test_collector_error_field_points_at_the_ndjson_line(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    lines = [GOOD] + [{"tenant_id": "t1", "event_type": f"kind_{i}"} for i in range(70)]
    body = "\n".join(json.dumps(x) for x in lines)
    r = client.post(
        "/analytics/metrics",
        content=body,
        headers={**bearer(keys["t1"]), "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 422
    assert r.json()["field"].startswith("lines[")


def test_path_and_query_validation_errors_are_normalised(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = api
    r = client.get("/metrics", params={"tenant": "bad tenant!"})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "invalid_input" and body["field"] == "tenant"
    assert body["detail"][0]["field"] == "tenant"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_counts_events_and_answers_429_with_retry_after(tmp_path: Path) -> None:
    with app_client(tmp_path, rate_limit=10.0, rate_burst=20.0) as (client, keys):
        clock = FakeClock()
        client.app.state.limiter = TenantRateLimiter(10.0, 20.0, clock=clock)  # type: ignore[attr-defined]
        h1, h2 = bearer(keys["t1"]), bearer(keys["t2"])
        fifteen = {"events": [GOOD] * 15}
        assert client.post("/analytics/metrics", json=fifteen, headers=h1).status_code == 200
        r = client.post("/analytics/metrics", json=fifteen, headers=h1)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "1"  # 10 tokens short at 10 events/s
        assert r.json()["error"] == "rate_limited"
        # Another tenant has its own bucket.
        t2 = {"events": [{**GOOD, "tenant_id": "t2"}] * 15}
        assert client.post("/analytics/metrics", json=t2, headers=h2).status_code == 200
        # A batch that can never fit the bucket says so instead of asking to retry forever.
        huge = client.post("/analytics/metrics", json={"events": [GOOD] * 21}, headers=h1)
        assert huge.status_code == 413 and huge.json()["error"] == "batch_too_large"
        clock.now += 1.0
        assert client.post("/analytics/metrics", json=fifteen, headers=h1).status_code == 200
        assert events_of(client, keys["t1"]) == {"song_play": 30.0}
        metrics = client.get("/metrics", params={"tenant": "t1"}).text
        assert sample_value(metrics, c.INGEST_REJECTED.name, tenant="t1", reason="rate_limited") == 1


def test_refused_batch_gives_its_tokens_back(tmp_path: Path) -> None:
    with app_client(tmp_path, rate_limit=10.0, rate_burst=20.0, max_series_per_tenant=40) as (client, keys):
        clock = FakeClock()
        client.app.state.limiter = TenantRateLimiter(10.0, 20.0, clock=clock)  # type: ignore[attr-defined]
        h = bearer(keys["t1"])
        too_many_types = {"events": [{"tenant_id": "t1", "event_type": f"k{i}"} for i in range(20)]}
        too_many_types["events"][0]["metadata"] = {"duration_ms": 1}
        too_many_types["events"][1]["metadata"] = {"duration_ms": 1}
        assert client.post("/analytics/metrics", json=too_many_types, headers=h).status_code == 422
        assert client.post("/analytics/metrics", json={"events": [GOOD] * 20}, headers=h).status_code == 200


def test_limiter_takes_from_all_tenants_or_none() -> None:
    clock = FakeClock()
    limiter = TenantRateLimiter(rate=10.0, burst=10.0, clock=clock)
    limiter.acquire({"a": 8})
    with pytest.raises(Exception) as refused:
        limiter.acquire({"b": 5, "a": 5})
    assert getattr(refused.value, "status", None) == 429
    limiter.acquire({"b": 10})  # b's bucket was not touched by the refused call
    limiter.acquire({"a": 2})


@pytest.mark.parametrize("first", ["events", "business"])
def test_batch_key_order_does_not_change_the_answer(
    api: tuple[TestClient, dict[str, str]], first: str
) -> None:
    """``{"events"...`` takes the one-pass parser, other orders the general one: same results, same errors."""
    client, keys = api
    h = {**bearer(keys["t1"]), "Content-Type": "application/json"}
    parts = {
        "events": json.dumps([GOOD, {**GOOD, "metadata": {"k": [1]}}]),
        "business": json.dumps([{"tenant_id": "t1"}]),
    }
    second = "business" if first == "events" else "events"
    body = f'{{"{first}": {parts[first]}, "{second}": {parts[second]}}}'
    r = client.post("/analytics/metrics", content=body, headers=h)
    assert r.status_code == 422
    assert {d["field"] for d in r.json()["detail"]} == {"events[1].metadata.k", "business[0]"}
    good = (
        f'{{"{first}": {json.dumps([GOOD] if first == "events" else [{"tenant_id": "t1", "revenue": 1}])}}}'
    )
    assert client.post("/analytics/metrics", content=good, headers=h).status_code == 200


HUGE = int("9" * 401)  # valid JSON; too large for a float


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ("event", "metadata.duration_ms"),
        ("batch", "events[1].metadata.duration_ms"),
        ("ndjson", "lines[1].metadata.duration_ms"),
    ],
)
def test_huge_integer_duration_is_a_422_naming_the_field(
    api: tuple[TestClient, dict[str, str]], form: str, field: str
) -> None:
    client, keys = api
    bad = {**GOOD, "metadata": {"duration_ms": HUGE}}
    if form == "event":
        content, ctype = json.dumps(bad).encode(), "application/json"
    elif form == "batch":
        content, ctype = json.dumps({"events": [GOOD, bad]}).encode(), "application/json"
    else:
        content, ctype = (json.dumps(GOOD) + "\n" + json.dumps(bad)).encode(), "application/x-ndjson"
    r = client.post(
        "/analytics/metrics", content=content, headers={**bearer(keys["t1"]), "Content-Type": ctype}
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert events_of(client, keys["t1"]) == {}


@pytest.mark.parametrize("name", ["revenue", "active_users", "conversion_rate"])
def test_huge_integer_business_figure_is_a_422_naming_the_field(
    api: tuple[TestClient, dict[str, str]], name: str
) -> None:
    client, keys = api
    r = client.post(
        "/analytics/metrics",
        content=json.dumps({"business": [{"tenant_id": "t1", name: HUGE}]}).encode(),
        headers={**bearer(keys["t1"]), "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == f"business[0].{name}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tenant_id": "t2", "revenue": 1.5e308}, "revenue"),
        ({"tenant_id": "t2", "active_users": 1.5e308}, "active_users"),
        ({**GOOD, "tenant_id": "t2", "metadata": {"duration_seconds": 1.5e308}}, "metadata.duration_seconds"),
        ({**GOOD, "tenant_id": "t2", "metadata": {"duration_ms": 1.5e308}}, "metadata.duration_ms"),
    ],
)
def test_finite_inputs_cannot_make_a_sum_infinite(
    api: tuple[TestClient, dict[str, str]], body: dict[str, Any], field: str
) -> None:
    client, keys = api
    h = bearer(keys["t2"])
    client.post("/analytics/metrics", json={"tenant_id": "t2", "revenue": 1.0}, headers=h).raise_for_status()
    for _ in range(2):
        r = client.post("/analytics/metrics", json=body, headers=h)
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field
        assert "at most" in r.json()["reason"] or "less than or equal" in r.json()["reason"]
    assert "inf" not in client.get("/metrics").text.lower().replace('le="+inf"', "")
    assert client.get("/analytics/metrics/t2", headers=h).json()["revenue"] == 1.0
    assert client.get("/analytics/metrics/aggregated", headers=bearer(keys["admin"])).json()["revenue"] == 1.0
