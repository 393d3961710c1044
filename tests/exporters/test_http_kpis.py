"""``POST /analytics/kpis`` and ``GET /analytics/kpis``: a tenant's custom KPIs over HTTP.

Same caps as the Python API (``exporters.kpis``); a batch is applied whole or not at all; bad input is a
422 naming ``values[i].<field>`` without echoing the value; a key of one tenant can neither write nor read
another's KPIs, however the request is dressed up; refusals are audited; values count against the
tenant's rate limit. The last test drives the real exporter process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from tenantpulse.conventions import catalog as c
from tenantpulse.exporters.kpis import MAX_LABEL_SETS, MAX_WRITES
from tests.support.exporter import Exporter, app_client, bearer, sample_value

URL = "/analytics/kpis"
HOSTILE = "hostile-\u202e-value"  # never to come back in an answer


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with app_client(tmp_path, audit_log=tmp_path / "audit.jsonl") as ctx:
        yield ctx


def post(client: TestClient, key: str, tenant: str, *values: dict[str, Any]) -> Any:
    return client.post(URL, json={"tenant_id": tenant, "values": list(values)}, headers=bearer(key))


def listed(client: TestClient, key: str, **params: str) -> dict[tuple[str, str], dict[str, Any]]:
    r = client.get(URL, params=params, headers=bearer(key))
    assert r.status_code == 200, r.text
    return {(k["tenant_id"], k["name"]): k for k in r.json()["kpis"]}


def test_a_batch_declares_records_and_reads_back(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    r = post(
        client,
        keys["t1"],
        "t1",
        {"name": "queue_depth", "value": 17, "labels": {"region": "eu"}, "help": "Jobs waiting."},
        {"name": "queue_depth", "value": 4.5, "labels": {"region": "us"}},
        {"name": "signups", "value": 3, "type": "counter"},
        {"name": "signups", "value": 2},  # a counter's default op is inc
        {"name": "queue_depth", "value": -2, "labels": {"region": "eu"}, "op": "inc"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == 5 and r.json()["declared"] == ["queue_depth", "signups"]
    assert r.json()["request_id"] == r.headers["x-request-id"]
    kpis = listed(client, keys["t1"])
    assert kpis[("t1", "queue_depth")] == {
        "tenant_id": "t1",
        "name": "queue_depth",
        "type": "gauge",
        "help": "Jobs waiting.",
        "labels": ["region"],
        "values": [{"labels": {"region": "eu"}, "value": 15.0}, {"labels": {"region": "us"}, "value": 4.5}],
    }
    assert kpis[("t1", "signups")]["values"] == [{"labels": {}, "value": 5.0}]
    text = client.get("/metrics").text  # the same series as the Python API's
    assert sample_value(text, c.CUSTOM_KPI.name, tenant="t1", kpi="queue_depth", region="eu") == 15
    assert sample_value(text, c.CUSTOM_KPI_COUNTER.name, tenant="t1", kpi="signups") == 5
    snapshot = client.get("/analytics/metrics/t1", headers=bearer(keys["t1"])).json()
    assert snapshot["kpis"]["queue_depth"]["values"] == kpis[("t1", "queue_depth")]["values"]
    # Repeating the declaration is fine; a second call adds no KPI.
    again = post(client, keys["t1"], "t1", {"name": "signups", "value": 1, "type": "counter", "help": ""})
    assert again.status_code == 200 and again.json()["declared"] == []


GOOD = {"name": "k", "value": 1}
FIRST = {"name": "first", "value": 1}  # a good value before the bad one: not applied either


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"name": "Bad-Name", "value": 1}, "values[0].name"),
        ({"name": "k" * 64, "value": 1}, "values[0].name"),
        ({"name": "k", "value": True}, "values[0].value"),
        ({"name": "k", "value": "5"}, "values[0].value"),
        ({"name": "k", "value": 1e16}, "values[0].value"),
        ({"name": "k", "value": 10**400}, "values[0].value"),
        ({"name": "k"}, "values[0].value"),
        ({"name": "k", "value": 1, "labels": {"tenant": "t2"}}, "values[0].labels"),
        ({"name": "k", "value": 1, "labels": {HOSTILE: "x"}}, "values[0].labels"),
        ({"name": "k", "value": 1, "labels": {"a": "1", "b": "2", "c": "3", "d": "4"}}, "values[0].labels"),
        ({"name": "k", "value": 1, "labels": {"region": "a\nb"}}, "values[0].labels.region"),
        ({"name": "k", "value": 1, "labels": {"region": "r" * 129}}, "values[0].labels.region"),
        ({"name": "k", "value": 1, "labels": {"region": ""}}, "values[0].labels.region"),
        ({"name": "k", "value": 1, "labels": {"region": 5}}, "values[0].labels.region"),
        ({"name": "k", "value": 1, "labels": ["region"]}, "values[0].labels"),
        ({"name": "k", "value": 1, "type": "histogram"}, "values[0].type"),
        ({"name": "k", "value": 1, "op": "replace"}, "values[0].op"),
        ({"name": "k", "value": 1, "help": "h" * 201}, "values[0].help"),
        ({"name": "k", "value": -1, "type": "counter"}, "values[0].value"),
        ({"name": "k", "value": 1, "type": "counter", "op": "set"}, "values[0].op"),
        ({"name": "k", "value": 1, "unknown": HOSTILE}, "values[0].unknown"),
    ],
)
def test_bad_values_are_422_naming_the_field_and_change_nothing(
    api: tuple[TestClient, dict[str, str]], value: dict[str, Any], field: str
) -> None:
    client, keys = api
    r = post(client, keys["t1"], "t1", FIRST, value)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field.replace("[0]", "[1]")
    assert HOSTILE not in r.text and "a\nb" not in r.text and "r" * 129 not in r.text
    assert listed(client, keys["t1"]) == {}
    assert client.get("/analytics/metrics/t1", headers=bearer(keys["t1"])).status_code == 404  # no trace


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tenant_id": "t1", "values": []}, "values"),
        ({"tenant_id": "t1", "values": [GOOD] * (MAX_WRITES + 1)}, "values"),
        ({"tenant_id": "t1"}, "values"),
        ({"values": [GOOD]}, "tenant_id"),
        ({"tenant_id": "t1\n", "values": [GOOD]}, "tenant_id"),
        ({"tenant_id": "*", "values": [GOOD]}, "tenant_id"),
        ({"tenant_id": 'x"}', "values": [GOOD]}, "tenant_id"),
        ({"tenant_id": "t1", "values": GOOD}, "values"),
        ([GOOD], "body"),
    ],
)
def test_bad_batches_are_422_naming_the_field(
    api: tuple[TestClient, dict[str, str]], body: Any, field: str
) -> None:
    client, keys = api
    r = client.post(URL, json=body, headers=bearer(keys["admin"]))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and r.json()["error"] == "invalid_input"


def test_bodies_that_are_not_json_are_refused(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    headers = bearer(keys["t1"])
    broken = client.post(URL, content=b'{"tenant_id": "t1", "values": [', headers=headers)
    assert broken.status_code == 422 and broken.json()["field"] == "body"
    nan = client.post(
        URL, content=b'{"tenant_id": "t1", "values": [{"name": "k", "value": NaN}]}', headers=headers
    )
    assert nan.status_code == 422 and nan.json()["field"] == "values[0].value"
    plain = client.post(URL, content=b"k 1", headers={**headers, "Content-Type": "text/plain"})
    assert plain.status_code == 415 and plain.json()["field"] == "Content-Type"


def test_a_declared_kpi_keeps_its_declaration(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    declare = {"name": "k", "value": 1, "labels": {"region": "eu"}, "help": "Mine."}
    assert post(client, keys["t1"], "t1", declare).status_code == 200
    for change, field in (
        ({"type": "counter"}, "type"),
        ({"help": "Another."}, "help"),
        ({"labels": {"zone": "eu"}}, "labels"),
        ({"labels": {}}, "labels"),
    ):
        r = post(client, keys["t1"], "t1", {**declare, **change})
        assert r.status_code == 422 and r.json()["field"] == f"values[0].{field}", r.text
    assert listed(client, keys["t1"])[("t1", "k")]["values"] == [{"labels": {"region": "eu"}, "value": 1.0}]


def test_at_most_20_kpis_per_tenant_and_a_refused_batch_leaves_nothing(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, keys = api
    many = [{"name": f"k{i}", "value": i} for i in range(21)]
    r = post(client, keys["t1"], "t1", *many)  # the 21st, in the same batch, refuses the whole batch
    assert r.status_code == 422 and r.json()["field"] == "values[20].name"
    assert r.json()["reason"] == "KPI limit reached (20)"
    assert listed(client, keys["t1"]) == {}
    assert post(client, keys["t1"], "t1", *many[:20]).status_code == 200
    assert post(client, keys["t1"], "t1", many[20]).json()["field"] == "values[0].name"
    assert post(client, keys["t1"], "t1", *many[:20]).status_code == 200  # updates are fine


def test_at_most_100_label_sets_per_kpi_counting_the_batch_and_what_is_held(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, keys = api
    sets = [{"name": "s", "value": 1, "labels": {"shard": str(i)}} for i in range(MAX_LABEL_SETS + 1)]
    r = post(client, keys["t1"], "t1", *sets)
    assert r.status_code == 422 and r.json()["field"] == f"values[{MAX_LABEL_SETS}].labels"
    assert r.json()["reason"] == f"label set limit reached ({MAX_LABEL_SETS}) for this KPI"
    assert post(client, keys["t1"], "t1", *sets[:50]).status_code == 200
    r = post(client, keys["t1"], "t1", *sets)  # 50 held (updated) + 51 new
    assert r.status_code == 422 and r.json()["field"] == f"values[{MAX_LABEL_SETS}].labels"
    assert [v["value"] for v in listed(client, keys["t1"])[("t1", "s")]["values"]] == [1.0] * 50
    assert post(client, keys["t1"], "t1", *sets[:MAX_LABEL_SETS]).status_code == 200


def test_kpi_series_count_against_the_tenant_series_cap(tmp_path: Path) -> None:
    with app_client(tmp_path, max_series_per_tenant=5) as (client, keys):
        client.post(
            "/analytics/metrics",
            json={"tenant_id": "t1", "event_type": "song_play"},
            headers=bearer(keys["t1"]),
        ).raise_for_status()  # one series held
        values = [{"name": "w", "value": 1, "labels": {"n": str(i)}} for i in range(5)]
        r = post(client, keys["t1"], "t1", *values)
        assert r.status_code == 422 and r.json()["reason"] == "series limit reached (5)"
        assert r.json()["field"] == "values[4].labels"
        assert listed(client, keys["t1"]) == {}
        assert post(client, keys["t1"], "t1", *values[:4]).status_code == 200


def test_keys_see_and_change_only_their_own_tenant(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    assert (
        post(
            client, keys["t2"], "t2", {"name": "secret_kpi", "value": 42, "labels": {"plan": "gold"}}
        ).status_code
        == 200
    )
    assert post(client, keys["t1"], "t1", {"name": "mine", "value": 1}).status_code == 200
    hostile = [
        {"tenant_id": "t2", "values": [{"name": "secret_kpi", "value": 0, "labels": {"plan": "gold"}}]},
        {"tenant_id": "t2", "values": [{"name": "injected", "value": 1}]},
    ]
    for body in hostile:
        r = client.post(URL, json=body, headers=bearer(keys["t1"]))
        assert r.status_code == 403 and r.json()["field"] == "tenant_id"
    # A label or a name cannot smuggle another tenant in.
    smuggle = [
        {"name": "mine2", "value": 1, "labels": {"tenant": "t2"}},
        {"name": 'mine",tenant="t2', "value": 1},
        {"name": "mine3", "value": 1, "labels": {"kpi": "secret_kpi"}},
    ]
    for value in smuggle:
        assert post(client, keys["t1"], "t1", value).status_code == 422
    for params in ({"tenant_id": "t2"}, {"tenant_id": "t2 "}, {"tenant_id": "*"}):
        r = client.get(URL, params=params, headers=bearer(keys["t1"]))
        assert r.status_code in (403, 422), r.text
        assert "secret_kpi" not in r.text and "gold" not in r.text
    own = client.get(URL, headers=bearer(keys["t1"]))
    assert "t2" not in own.text and "secret_kpi" not in own.text
    assert set(listed(client, keys["t1"])) == {("t1", "mine")}
    # Scopes: a read key cannot write, a write key cannot read.
    assert post(client, keys["t1:read"], "t1", {"name": "mine", "value": 2}).status_code == 403
    assert client.get(URL, headers=bearer(keys["t1:write"])).status_code == 403
    assert client.get(URL, headers=bearer("not-a-key")).status_code == 401
    # t2's value is untouched; the admin sees all tenants, or one.
    everything = listed(client, keys["admin"])
    assert everything[("t2", "secret_kpi")]["values"] == [{"labels": {"plan": "gold"}, "value": 42.0}]
    assert set(everything) == {("t1", "mine"), ("t2", "secret_kpi")}
    assert set(listed(client, keys["admin"], tenant_id="t1")) == {("t1", "mine")}
    assert listed(client, keys["admin"], tenant_id="t3") == {}
    # The same KPI name in two tenants is two KPIs.
    assert (
        post(client, keys["t1"], "t1", {"name": "secret_kpi", "value": 5, "type": "counter"}).status_code
        == 200
    )


def test_refused_writes_are_audited_and_accepted_ones_are_data(
    api: tuple[TestClient, dict[str, str]], tmp_path: Path
) -> None:
    client, keys = api
    assert post(client, keys["t1"], "t1", GOOD).status_code == 200
    assert post(client, keys["t1"], "t2", GOOD).status_code == 403
    assert client.get(URL, params={"tenant_id": "t2"}, headers=bearer(keys["t1"])).status_code == 403
    entries = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(e["action"], e["actor"], e["tenant"], e["outcome"]) for e in entries] == [
        ("POST /analytics/kpis", "t1", "t2", "forbidden"),
        ("GET /analytics/kpis", "t1", "t2", "forbidden"),
    ]
    assert all(k not in (tmp_path / "audit.jsonl").read_text() for k in keys.values())


def test_values_count_against_the_rate_limit_and_bodies_are_bounded(tmp_path: Path) -> None:
    with app_client(tmp_path, rate_limit=1.0, rate_burst=20, max_body_bytes=4096) as (client, keys):
        t1 = keys["t1"]
        too_many = post(client, t1, "t1", *([GOOD] * 21))
        assert too_many.status_code == 413 and too_many.json()["field"] == "values"
        assert post(client, t1, "t1", *([GOOD] * 20)).status_code == 200
        limited = post(client, t1, "t1", GOOD)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        big = client.post(URL, content=b"{" + b" " * 5000 + b"}", headers=bearer(t1))
        assert big.status_code == 413 and big.json()["field"] == "body"
        # A batch the collector refuses gives its tokens back: t2's bucket is still full after one.
        refused = post(client, keys["t2"], "t2", *([GOOD] * 19), {**GOOD, "type": "counter"})
        assert refused.status_code == 422 and refused.json()["field"] == "values[19].type"
        assert post(client, keys["t2"], "t2", *([GOOD] * 20)).status_code == 200


def test_erasure_removes_the_kpis(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    assert post(client, keys["t1"], "t1", GOOD).status_code == 200
    assert client.delete("/analytics/tenants/t1", headers=bearer(keys["admin"])).status_code == 200
    assert listed(client, keys["t1"]) == {}


def test_the_real_exporter_serves_the_kpi_api(tmp_path: Path) -> None:
    with Exporter(tmp_path) as ex:
        body = {
            "tenant_id": "t1",
            "values": [{"name": "queue_depth", "value": 3, "labels": {"region": "eu"}}],
        }
        r = requests.post(f"{ex.url}{URL}", json=body, headers=ex.auth("t1"), timeout=10)
        assert r.status_code == 200, r.text
        assert sample_value(ex.metrics(), c.CUSTOM_KPI.name, tenant="t1", kpi="queue_depth", region="eu") == 3
        read = requests.get(f"{ex.url}{URL}", headers=ex.auth("t1"), timeout=10).json()
        assert read["kpis"][0]["values"] == [{"labels": {"region": "eu"}, "value": 3.0}]
        assert (
            requests.get(
                f"{ex.url}{URL}", params={"tenant_id": "t2"}, headers=ex.auth("t1"), timeout=10
            ).status_code
            == 403
        )
