"""The Prometheus API client against a local server that speaks the API's shape: auth headers, retries
with backoff on 5xx/429, no retry on a bad query, chunked range queries stitched back, value parsing."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from tenantpulse.anomaly_sidecar.reader import Auth, PrometheusReader, QueryError
from tenantpulse.kernel.durations import format_duration, parse_duration
from tenantpulse.kernel.errors import UsageError
from tests.support.sidecar import FakePrometheusApi, matrix_answer, vector_answer

Handler = Callable[[dict[str, str], dict[str, str]], tuple[int, Any]]


@pytest.fixture
def fake() -> Iterator[Callable[[Handler], FakePrometheusApi]]:
    servers: list[FakePrometheusApi] = []

    def make(answer: Handler) -> FakePrometheusApi:
        servers.append(FakePrometheusApi(lambda path, form, headers: answer(form, headers)))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def vector(rows: list[tuple[dict[str, str], str]], t: float = 1700000000.0) -> dict[str, Any]:
    return vector_answer(rows, t)


def test_instant_query_parses_values_including_special_floats(
    fake: Callable[[Handler], FakePrometheusApi],
) -> None:
    api = fake(lambda f, h: (200, vector([({"tenant": "a"}, "1.5"), ({"tenant": "b"}, "NaN"), ({}, "+Inf")])))
    vec = PrometheusReader(api.url).query("up", at=1700000000.0)
    assert [lab.get("tenant") for lab in vec.labels] == ["a", "b", None]
    assert vec.values[0] == 1.5 and np.isnan(vec.values[1]) and vec.values[2] == np.inf
    assert (vec.times == 1700000000.0).all()
    path, form, _ = api.requests[0]
    assert path == "/api/v1/query"
    assert form == {"query": "up", "time": "1700000000.0", "nocache": "1", "latency_offset": "0s"}


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (Auth(bearer_token="s3cret"), {"authorization": "Bearer s3cret"}),
        (Auth(basic_auth=("prom", "pw")), {"authorization": "Basic cHJvbTpwdw=="}),
        (Auth(org_id="tenant-42"), {"x-scope-orgid": "tenant-42"}),
    ],
)
def test_auth_headers_are_sent(
    fake: Callable[[Handler], FakePrometheusApi], auth: Auth, expected: dict[str, str]
) -> None:
    api = fake(lambda f, h: (200, vector([])))
    PrometheusReader(api.url, auth=auth).query("up")
    headers = api.requests[0][2]
    for k, v in expected.items():
        assert headers[k] == v
    if not auth.bearer_token and not auth.basic_auth:
        assert "authorization" not in headers


def test_bearer_and_basic_together_is_refused() -> None:
    with pytest.raises(UsageError, match="either"):
        Auth(bearer_token="x", basic_auth=("u", "p"))


@pytest.mark.parametrize("status", [503, 429, 502])
def test_transient_errors_are_retried_until_success(
    fake: Callable[[Handler], FakePrometheusApi], status: int
) -> None:
    calls = iter([status, status, 200])

    def answer(f: dict[str, str], h: dict[str, str]) -> tuple[int, Any]:
        code = next(calls)
        return (
            (200, vector([({"tenant": "a"}, "3")]))
            if code == 200
            else (code, {"status": "error", "error": "busy"})
        )

    api = fake(answer)
    vec = PrometheusReader(api.url, retries=3, backoff=0.01).query("up")
    assert vec.values.tolist() == [3.0]
    assert len(api.requests) == 3


def test_retries_are_bounded_then_a_retriable_error(fake: Callable[[Handler], FakePrometheusApi]) -> None:
    api = fake(lambda f, h: (503, {"status": "error", "errorType": "unavailable", "error": "overloaded"}))
    with pytest.raises(QueryError, match="503.*overloaded") as info:
        PrometheusReader(api.url, retries=2, backoff=0.01).query("up")
    assert info.value.retriable
    assert len(api.requests) == 3  # the first try and two retries


def test_a_bad_query_is_not_retried(fake: Callable[[Handler], FakePrometheusApi]) -> None:
    api = fake(
        lambda f, h: (400, {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"})
    )
    with pytest.raises(QueryError, match="parse error") as info:
        PrometheusReader(api.url, retries=3, backoff=0.01).query("rate(")
    assert not info.value.retriable and info.value.status == 400
    assert len(api.requests) == 1


def test_unreachable_server_is_a_query_error() -> None:
    from tests.support.ports import free_port

    reader = PrometheusReader(f"http://127.0.0.1:{free_port()}", retries=1, backoff=0.01, timeout=1)
    with pytest.raises(QueryError, match="ConnectionError") as info:
        reader.query("up")
    assert info.value.retriable


def test_non_json_answer_is_a_query_error(fake: Callable[[Handler], FakePrometheusApi]) -> None:
    api = fake(lambda f, h: (200, b"<html>proxy login</html>"))
    with pytest.raises(QueryError, match="proxy login"):
        PrometheusReader(api.url, retries=0).query("up")


def test_range_query_is_chunked_and_stitched_per_series(fake: Callable[[Handler], FakePrometheusApi]) -> None:
    def answer(f: dict[str, str], h: dict[str, str]) -> tuple[int, Any]:
        start, end, step = float(f["start"]), float(f["end"]), float(f["step"])
        ts = np.arange(start, end + step / 2, step)
        result = [
            {"metric": {"tenant": t}, "values": [[x, str(x * k)] for x in ts]}
            for t, k in (("a", 1), ("b", 2))
        ]
        return 200, {"status": "success", "data": {"resultType": "matrix", "result": result}}

    api = fake(answer)
    rows = PrometheusReader(api.url).query_range("x", 1000.0, 1099.0, 1.0, max_points=30)
    assert len(api.requests) == 4  # 100 points in chunks of at most 30
    by_tenant = {r.labels["tenant"]: r for r in rows}
    np.testing.assert_array_equal(by_tenant["a"].times, np.arange(1000.0, 1100.0))
    np.testing.assert_array_equal(by_tenant["b"].values, 2 * np.arange(1000.0, 1100.0))
    for _, form, _ in api.requests:
        assert (float(form["end"]) - float(form["start"])) / float(form["step"]) + 1 <= 30


def test_reader_refuses_a_url_without_scheme() -> None:
    with pytest.raises(UsageError, match="http"):
        PrometheusReader("localhost:9090")


@pytest.mark.parametrize(
    ("text", "seconds"), [("15s", 15), ("5m", 300), ("1h30m", 5400), ("30d", 2592000), ("2", 2)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m5", "-1s", "0s", "1h 5m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="duration"):
        parse_duration(text)


def test_automatic_gc_is_paused_while_an_answer_is_fetched_and_parsed(
    fake: Callable[[Handler], FakePrometheusApi],
) -> None:
    """The fake server runs in this process, so it sees the collector's state during the sidecar's call."""
    seen: list[bool] = []

    def answer(form: dict[str, str], headers: dict[str, str]) -> tuple[int, Any]:
        seen.append(gc.isenabled())
        if form["query"] == "bad":
            return 400, {"status": "error", "errorType": "bad_data", "error": "parse error"}
        if "start" in form:
            return 200, matrix_answer([({"tenant": "a"}, [(float(form["start"]), 1.0)])])
        return 200, vector([({"tenant": "a"}, "2")])

    reader = PrometheusReader(fake(answer).url)
    assert gc.isenabled()
    assert reader.query("x").values.tolist() == [2.0] and gc.isenabled()
    assert len(reader.query_range("x", 1000.0, 1099.0, 1.0, max_points=30)) == 1 and gc.isenabled()
    with pytest.raises(QueryError, match="parse error"):
        reader.query("bad")
    assert gc.isenabled() and seen == [False] * 6  # 1 instant, 4 range chunks, 1 refused
