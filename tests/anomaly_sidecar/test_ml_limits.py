"""The ML API's limits (hardening item 1): bounded points and range queries per request (422 naming
the field, never 500), bounded concurrent ML calls per tenant (429 with Retry-After), and probes that
answer while slow ML calls hold every ML thread: in-process over a scripted Prometheus, and the real
sidecar process over a Prometheus whose range queries hang."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from tenantpulse.anomaly_sidecar.app import (
    MAX_FORECAST_POINTS,
    MAX_HISTORY_POINTS,
    MAX_ML_CALLS_PER_TENANT,
    MAX_TRAIN_POINTS,
    MlGate,
    create_app,
)
from tenantpulse.security.keys import KeyRing
from tests.anomaly_sidecar.test_service import TENANTS, World, make_service
from tests.support.ports import wait_until
from tests.support.sidecar import FakePrometheusApi, Sidecar

RANGE = "/api/v1/query_range"


class SlowWorld(World):
    """The scripted Prometheus, whose range queries hang (until ``release`` or 30 s) while ``slow`` is set."""

    def __init__(self, tenants: list[str]) -> None:
        super().__init__(tenants)
        self.slow = threading.Event()
        self.release = threading.Event()
        self.hanging = 0
        self.hanging_by_tenant: Counter[str] = Counter()  # the ML calls' queries name their tenant
        self._count = threading.Lock()

    def answer(self, path: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, Any]:
        if path == RANGE and self.slow.is_set():
            _, tenant = self.by_expr.get(form.get("query", ""), (None, None))
            with self._count:
                self.hanging += 1
                if tenant is not None:
                    self.hanging_by_tenant[tenant] += 1
            self.release.wait(30)
        return super().answer(path, form, headers)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, SlowWorld, FakePrometheusApi]]:
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(
        "keys:\n"
        + "".join(f"  - {{key: key-{t}, tenant: {t}, scopes: [read, write]}}\n" for t in ("t1", "t2"))
    )
    world = SlowWorld(TENANTS)
    with FakePrometheusApi(world.answer) as fake:
        service = make_service(fake)
        service.backfill(60.0)
        service.cycle()
        service.ready.set()
        with TestClient(create_app(service, KeyRing.from_file(keys_file), run_loop=False)) as client:
            yield client, world, fake
            world.release.set()


def auth(tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer key-{tenant}"}


def range_queries(fake: FakePrometheusApi) -> int:
    return sum(path == RANGE for path, _, _ in fake.requests)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"history": "3650d", "step": "0.001"}, "step"),  # ~3x10^11 points: ~3x10^7 range queries
        ({"horizon": "2w", "step": "1"}, "step"),  # 1.2 million points answered
        ({"history": "8d", "horizon": "30d"}, "horizon"),  # the default step answers too many
        ({"history": "1d", "horizon": "30d"}, "history"),  # a 30d forecast needs 7d12h of history
        ({"history": "1h", "step": "10m"}, "step"),  # 6 values: a forecast needs 12
        ({"horizon": "1000y"}, "horizon"),
        ({"history": "1000y"}, "history"),
        ({"step": "1000y"}, "step"),
        ({"horizon": "1e300"}, "horizon"),
    ],
)
def test_predict_over_the_limits_is_422_naming_the_field_before_any_query(
    api: tuple[TestClient, SlowWorld, FakePrometheusApi], body: dict[str, str], field: str
) -> None:
    client, _, fake = api
    before = range_queries(fake)
    r = client.post(
        "/analytics/ml/predict",
        json={"tenant_id": "t1", "indicator": "request_rate", **body},
        headers=auth("t1"),
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and r.json()["error"] == "invalid_input" and r.json()["reason"]
    assert range_queries(fake) == before


def test_predict_at_the_limits_is_answered(api: tuple[TestClient, SlowWorld, FakePrometheusApi]) -> None:
    client, _, fake = api
    before = range_queries(fake)
    body = {"tenant_id": "t1", "indicator": "request_rate", "history": f"{MAX_HISTORY_POINTS - 1}s",
            "step": "1s", "horizon": f"{MAX_FORECAST_POINTS}s"}  # fmt: skip
    r = client.post("/analytics/ml/predict", json=body, headers=auth("t1"))
    assert r.status_code == 200, r.text
    assert len(r.json()["forecast"]) == MAX_FORECAST_POINTS and range_queries(fake) - before == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"window": "1000y"}, "window"),
        ({"window": f"{MAX_TRAIN_POINTS}s"}, "window"),  # at the 1 s cycle step: one point too many
        ({"window": "3650d"}, "window"),
    ],
)
def test_train_over_the_limits_is_422_naming_the_field_before_any_query(
    api: tuple[TestClient, SlowWorld, FakePrometheusApi], body: dict[str, str], field: str
) -> None:
    client, _, fake = api
    before = range_queries(fake)
    r = client.post("/analytics/ml/train", json={"tenant_id": "t1", **body}, headers=auth("t1"))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and r.json()["reason"]
    assert range_queries(fake) == before


def test_train_reads_a_repeated_indicator_once(api: tuple[TestClient, SlowWorld, FakePrometheusApi]) -> None:
    client, _, fake = api
    before = range_queries(fake)
    body = {"tenant_id": "t1", "indicators": ["error_rate"] * 50, "window": "2m"}
    r = client.post("/analytics/ml/train", json=body, headers=auth("t1"))
    assert r.status_code == 200, r.text
    assert r.json()["indicators"] == ["error_rate"] and range_queries(fake) - before == 1


def test_concurrent_ml_calls_beyond_the_tenants_limit_are_429_with_retry_after(
    api: tuple[TestClient, SlowWorld, FakePrometheusApi],
) -> None:
    client, world, _ = api
    gate: MlGate = client.app.state.ml_gate  # type: ignore[attr-defined]
    body = {"tenant_id": "t1", "indicator": "request_rate", "horizon": "1m", "history": "5m", "step": "5s"}
    world.slow.set()
    with ThreadPoolExecutor(MAX_ML_CALLS_PER_TENANT + 1) as pool:
        held = [
            pool.submit(client.post, "/analytics/ml/predict", json=body, headers=auth("t1"))
            for _ in range(MAX_ML_CALLS_PER_TENANT)
        ]
        wait_until(lambda: world.hanging == MAX_ML_CALLS_PER_TENANT, timeout=10)
        assert gate.in_flight("t1") == MAX_ML_CALLS_PER_TENANT
        r = client.post("/analytics/ml/predict", json=body, headers=auth("t1"))
        assert (
            r.status_code == 429 and r.json()["error"] == "rate_limited" and r.json()["field"] == "tenant_id"
        )
        assert int(r.headers["retry-after"]) > 0
        r = client.post("/analytics/ml/train", json={"tenant_id": "t1", "window": "2m"}, headers=auth("t1"))
        assert r.status_code == 429
        other = pool.submit(
            client.post, "/analytics/ml/predict", json={**body, "tenant_id": "t2"}, headers=auth("t2")
        )
        wait_until(lambda: world.hanging == MAX_ML_CALLS_PER_TENANT + 1, timeout=10)  # t2 is not t1's queue
        assert client.get("/healthz").status_code == 200
        world.release.set()
        assert [f.result(timeout=30).status_code for f in [*held, other]] == [200] * (
            MAX_ML_CALLS_PER_TENANT + 1
        )
    assert gate.in_flight() == 0
    world.slow.clear()
    assert client.post("/analytics/ml/predict", json=body, headers=auth("t1")).status_code == 200


def test_probes_answer_while_abandoned_ml_calls_hang(tmp_path: Path) -> None:
    """The real sidecar: 45 forecasts whose range queries hang, each abandoned by its client after 2 s;
    /healthz and /metrics still answer (bounded waits), and the hung calls never exceed the limits."""
    world = SlowWorld(TENANTS)
    with (
        FakePrometheusApi(world.answer) as fake,
        # A query timeout past the hang: the reader's read-timeout retries would otherwise send a hung
        # call's query again, and the count below is of queries the ML calls keep hanging at once.
        Sidecar(
            tmp_path,
            fake.url,
            extra_args=["--indicators", "request_rate,error_rate", "--query-timeout", "60s"],
        ) as sidecar,
    ):
        world.slow.set()
        body = {"indicator": "request_rate", "horizon": "1m", "history": "5m", "step": "5s"}
        tenants = ["t1", "t2", "t3"]

        def abandon(i: int) -> int | None:
            tenant = tenants[i % len(tenants)]
            headers = {"Authorization": f"Bearer {sidecar.keys[tenant]}"}
            try:
                r = requests.post(
                    f"{sidecar.url}/analytics/ml/predict", json={**body, "tenant_id": tenant},
                    headers=headers, timeout=2,
                )  # fmt: skip
            except requests.Timeout:
                return None
            return r.status_code

        try:
            with ThreadPoolExecutor(45) as pool:
                answers = list(pool.map(abandon, range(45)))
            assert set(answers) <= {None, 429}, answers
            for _ in range(3):
                assert requests.get(f"{sidecar.url}/healthz", timeout=5).json()["status"] == "ok"
                assert requests.get(f"{sidecar.url}/metrics", timeout=5).status_code == 200
            # Only the ML calls' queries count: the sidecar's own backfill and forecasts (all tenants at
            # once) may hang here too.
            assert set(world.hanging_by_tenant) <= set(tenants)
            assert max(world.hanging_by_tenant.values()) <= MAX_ML_CALLS_PER_TENANT, world.hanging_by_tenant
        finally:
            world.release.set()
