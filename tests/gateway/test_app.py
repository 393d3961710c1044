"""The gateway's HTTP behaviour against a scripted backend: keys, what is forwarded, limits, failures.

The backend here is a loopback HTTP server that records every request (method, path, parameters in
order, headers) and answers as a test tells it; the isolation against a real Prometheus fed by the
real exporter is ``test_isolation``.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import uvicorn
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tenantpulse.gateway.app import GatewaySettings, create_app
from tests.support.exporter import write_keys_file
from tests.support.gateway import auth_headers
from tests.support.ports import free_port, wait_until

EMPTY_VECTOR = {"status": "success", "data": {"resultType": "vector", "result": []}}


@dataclass
class Seen:
    method: str
    path: str
    params: list[tuple[str, str]]
    headers: dict[str, str]


Reply = tuple[int, bytes, dict[str, str]]


@dataclass
class ScriptedBackend:
    """Answers ``reply(seen)`` (default: an empty vector) and records what it was asked."""

    reply: Callable[[Seen], Reply] | None = None
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                url = urlsplit(self.path)
                params = parse_qsl(url.query, keep_blank_values=True)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    params = parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True) + params
                seen = Seen(self.command, url.path, params, {k.lower(): v for k, v in self.headers.items()})
                backend.seen.append(seen)
                status, body, headers = (backend.reply or _json_reply)(seen)
                self.send_response(status)
                headers = {"Content-Type": "application/json", **headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve  # noqa: N815 - http.server naming

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def last(self) -> Seen:
        return self.seen[-1]


def _json_reply(seen: Seen, body: Any = EMPTY_VECTOR) -> Reply:
    return 200, json.dumps(body).encode(), {}


@pytest.fixture
def backend() -> Iterator[ScriptedBackend]:
    b = ScriptedBackend()
    yield b
    b.close()


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    return write_keys_file(tmp_path / "keys.yaml", ["t1", "t2"])


def make_client(tmp_path: Path, backend: ScriptedBackend, **settings: Any) -> TestClient:
    s = GatewaySettings(backend_url=backend.url, api_keys_file=tmp_path / "keys.yaml", **settings)
    return TestClient(create_app(s))


@pytest.fixture
def client(tmp_path: Path, backend: ScriptedBackend, keys: dict[str, str]) -> Iterator[TestClient]:
    with make_client(tmp_path, backend) as c:
        yield c


def is_prometheus_error(r: Any, status: int, error_type: str) -> bool:
    body = r.json()
    return (
        r.status_code == status
        and set(body) == {"status", "errorType", "error"}
        and body["status"] == "error"
        and body["errorType"] == error_type
    )


# --- keys -----------------------------------------------------------------------------------------


def test_keys(client: TestClient, backend: ScriptedBackend, keys: dict[str, str]) -> None:
    q = {"query": "up"}
    r = client.post("/api/v1/query", data=q)
    assert is_prometheus_error(r, 401, "unauthorized")
    assert "Bearer" in r.headers["www-authenticate"] and "Basic" in r.headers["www-authenticate"]
    for bad in ("Bearer nope", "Basic !!!notbase64", "Basic " + "Z3JhZmFuYQ==", "Token abc", "Bearer"):
        assert is_prometheus_error(
            client.post("/api/v1/query", data=q, headers={"Authorization": bad}), 401, "unauthorized"
        )
    assert backend.seen == []
    assert is_prometheus_error(
        client.post("/api/v1/query", data=q, headers=auth_headers(keys["t1:write"])), 403, "forbidden"
    )
    for key in ("t1", "t1:read"):
        for basic in (False, True):  # Grafana's datasource: bearer header, or the key as basic auth password
            r = client.post("/api/v1/query", data=q, headers=auth_headers(keys[key], basic))
            assert r.status_code == 200 and r.json() == EMPTY_VECTOR
            assert dict(backend.last().params)["query"] == 'up{tenant="t1"}'
    r = client.post(
        "/api/v1/query", data={"query": 'up{tenant=~".+"} # all'}, headers=auth_headers(keys["admin"])
    )
    assert r.status_code == 200 and dict(backend.last().params)["query"] == 'up{tenant=~".+"} # all'


# --- what is forwarded ----------------------------------------------------------------------------


def test_every_endpoint_forwards_the_tenants_query_only(
    client: TestClient, backend: ScriptedBackend, keys: dict[str, str]
) -> None:
    h = auth_headers(keys["t2:read"])
    cases: list[tuple[str, str, dict[str, Any], str, str, list[tuple[str, str]]]] = [
        ("GET", "/api/v1/query", {"query": "sum(x)", "time": "100"}, "POST", "/api/v1/query",
         [("query", 'sum(x{tenant="t2"})'), ("time", "100.000"), ("timeout", "30000ms")]),
        ("POST", "/api/v1/query_range",
         {"query": "rate(x[5m])", "start": "2026-01-01T00:00:00Z", "end": "1767229200", "step": "1m", "timeout": "5s"},
         "POST", "/api/v1/query_range",
         [("query", 'rate(x{tenant="t2"}[5m])'), ("start", "1767225600.000"), ("end", "1767229200.000"),
          ("step", "60000ms"), ("timeout", "5000ms")]),
        ("POST", "/api/v1/series", {"match[]": ["up", '{__name__=~"a.*"}'], "start": "1", "end": "2", "limit": "5"},
         "POST", "/api/v1/series",
         [("match[]", 'up{tenant="t2"}'), ("match[]", '{tenant="t2",__name__=~"a.*"}'), ("start", "1.000"),
          ("end", "2.000"), ("limit", "5")]),
        ("GET", "/api/v1/labels", {}, "POST", "/api/v1/labels", [("match[]", '{tenant="t2"}')]),
        ("POST", "/api/v1/labels", {"match[]": "up"}, "POST", "/api/v1/labels", [("match[]", 'up{tenant="t2"}')]),
        ("GET", "/api/v1/label/job/values", {"start": "10"}, "GET", "/api/v1/label/job/values",
         [("match[]", '{tenant="t2"}'), ("start", "10.000")]),
        ("GET", "/api/v1/label/__name__/values", {"match[]": "up"}, "GET", "/api/v1/label/__name__/values",
         [("match[]", 'up{tenant="t2"}')]),
        ("GET", "/api/v1/metadata", {"metric": "up", "limit": "3", "bogus": "1"}, "GET", "/api/v1/metadata",
         [("metric", "up"), ("limit", "3")]),
        ("GET", "/api/v1/query_exemplars", {"query": "x_bucket", "start": "1", "end": "2"}, "POST",
         "/api/v1/query_exemplars", [("query", 'x_bucket{tenant="t2"}'), ("start", "1.000"), ("end", "2.000")]),
        ("GET", "/api/v1/status/buildinfo", {"query": "ignored"}, "GET", "/api/v1/status/buildinfo", []),
    ]  # fmt: skip
    for method, path, params, backend_method, backend_path, forwarded in cases:
        if method == "GET":
            r = client.get(path, params=params, headers=h)
        else:
            r = client.post(path, data=params, headers=h)
        assert r.status_code == 200, (path, r.text)
        seen = backend.last()
        assert (seen.method, seen.path, seen.params) == (backend_method, backend_path, forwarded), path


def test_parameters_come_from_the_form_first_then_the_url(
    client: TestClient, backend: ScriptedBackend, keys: dict[str, str]
) -> None:
    """As Prometheus reads them; either way, only the checked query is forwarded (never a second one)."""
    r = client.post(
        "/api/v1/query?query=evil%7Btenant%3D%22t2%22%7D&query=b",
        data={"query": "good"},
        headers=auth_headers(keys["t1"]),
    )
    assert r.status_code == 200
    assert backend.last().params == [("query", 'good{tenant="t1"}'), ("timeout", "30000ms")]
    r = client.get(
        "/api/v1/query",
        params=[("query", 'evil{tenant="t2"}'), ("query", "good")],
        headers=auth_headers(keys["t1"]),
    )
    assert is_prometheus_error(r, 403, "forbidden")


def test_a_refused_query_never_reaches_the_backend(
    client: TestClient, backend: ScriptedBackend, keys: dict[str, str]
) -> None:
    h = auth_headers(keys["t1"])
    refused = [
        client.post("/api/v1/query", data={"query": 'x{tenant="t2"}'}, headers=h),
        client.post(
            "/api/v1/query_range",
            data={"query": 'sum(x{tenant=~".+"})', "start": 0, "end": 60, "step": 15},
            headers=h,
        ),
        client.post("/api/v1/series", data={"match[]": ["up", '{__name__="up", tenant!="t1"}']}, headers=h),
        client.get(
            "/api/v1/label/tenant/values", params={"match[]": '{__name__="up",tenant="t2"}'}, headers=h
        ),
        client.get(
            "/api/v1/query_exemplars", params={"query": 'label_replace(x, "tenant", "t2", "", "")'}, headers=h
        ),
    ]
    assert all(is_prometheus_error(r, 403, "forbidden") for r in refused), [r.text for r in refused]
    assert "t2" not in refused[0].json()["error"] and "selector 1" in refused[0].json()["error"]
    assert "match[] 2" in refused[2].json()["error"]
    assert is_prometheus_error(
        client.post("/api/v1/query", data={"query": "sum("}, headers=h), 400, "bad_data"
    )
    assert is_prometheus_error(client.post("/api/v1/query", data={}, headers=h), 400, "bad_data")
    assert is_prometheus_error(client.post("/api/v1/series", data={}, headers=h), 400, "bad_data")
    assert backend.seen == []
    metrics = client.get("/metrics").text
    assert 'tenantpulse_gateway_refusals_total{reason="forbidden_query"} 5' in metrics
    assert 'tenantpulse_gateway_refusals_total{reason="bad_query"} 1' in metrics
    assert 'tenantpulse_gateway_requests_total{endpoint="query",code="403"} 1' in metrics


# --- limits ---------------------------------------------------------------------------------------


def test_limits_are_refused_before_the_backend(
    tmp_path: Path, backend: ScriptedBackend, keys: dict[str, str]
) -> None:
    with make_client(tmp_path, backend, max_query_length=100, max_match=3, max_body_bytes=4096) as client:
        h = auth_headers(keys["t1"])
        r = client.post("/api/v1/query", data={"query": "x" * 101}, headers=h)
        assert is_prometheus_error(r, 400, "bad_data") and "101 characters" in r.json()["error"]
        assert client.post("/api/v1/query", data={"query": "x" * 100}, headers=h).status_code == 200
        r = client.post("/api/v1/series", data={"match[]": ["a", "b", "c", "d"]}, headers=h)
        assert is_prometheus_error(r, 400, "bad_data")
        r = client.post("/api/v1/query", data={"query": "x", "pad": "y" * 5000}, headers=h)
        assert is_prometheus_error(r, 413, "bad_data")
        step = {"query": "x", "start": "0", "step": "1"}
        r = client.post("/api/v1/query_range", data={**step, "end": "11001"}, headers=h)
        assert is_prometheus_error(r, 400, "bad_data")
        assert r.json()["error"].startswith("exceeded maximum resolution of 11,000 points per timeseries")
        assert client.post("/api/v1/query_range", data={**step, "end": "11000"}, headers=h).status_code == 200
        for bad in ({"start": "yesterday"}, {"step": "0"}, {"step": "-5s"}, {"end": "NaN"}, {"step": ""}):
            r = client.post("/api/v1/query_range", data={**step, "end": "60", **bad}, headers=h)
            assert is_prometheus_error(r, 400, "bad_data"), bad
            assert "yesterday" not in r.json()["error"]
        assert is_prometheus_error(client.get("/api/v1/label/bad-name/values", headers=h), 400, "bad_data")
        assert is_prometheus_error(
            client.get("/api/v1/metadata", params={"limit": "-1"}, headers=h), 400, "bad_data"
        )
        r = client.post("/api/v1/query", data={"query": "x", "timeout": "10m"}, headers=h)
        assert dict(backend.last().params)["timeout"] == "30000ms"  # never beyond the gateway's own
        sent = len(backend.seen)
    assert sent == 3  # the two queries at the limits and the last one


@pytest.fixture
def served(tmp_path: Path, keys: dict[str, str]) -> Iterator[Callable[..., str]]:
    """Serve a gateway with uvicorn on a thread (real sockets, real concurrency); returns its URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def serve(backend_url: str, **settings: Any) -> str:
        app = create_app(
            GatewaySettings(backend_url=backend_url, api_keys_file=tmp_path / "keys.yaml", **settings)
        )
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
        )
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        wait_until(lambda: server.started, timeout=10, what="gateway started")
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield serve
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


def test_concurrency_per_tenant_and_health_never_waits(
    served: Callable[..., str], keys: dict[str, str]
) -> None:
    release = threading.Event()

    def hold(seen: Seen) -> Reply:
        release.wait(20)
        return _json_reply(seen)

    backend = ScriptedBackend(hold)
    try:
        url = served(backend.url, max_concurrent_per_tenant=2)
        with ThreadPoolExecutor(4) as pool:
            held = [
                pool.submit(
                    requests.post,
                    f"{url}/api/v1/query",
                    data={"query": "x"},
                    headers=auth_headers(keys["t1"]),
                    timeout=30,
                )
                for _ in range(2)
            ]
            other = pool.submit(
                requests.post,
                f"{url}/api/v1/query",
                data={"query": "x"},
                headers=auth_headers(keys["t2"]),
                timeout=30,
            )
            wait_until(lambda: len(backend.seen) == 3, timeout=10, what="three calls at the backend")
            r = requests.post(
                f"{url}/api/v1/query", data={"query": "x"}, headers=auth_headers(keys["t1:read"]), timeout=10
            )
            assert is_prometheus_error(r, 429, "too_many_requests") and r.headers["retry-after"] == "1"
            # the held calls wait for ``release``: probes answering now never waited on them
            assert requests.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
            assert requests.get(f"{url}/metrics", timeout=5).status_code == 200
            release.set()
            assert [f.result().status_code for f in (*held, other)] == [200, 200, 200]
        r = requests.post(
            f"{url}/api/v1/query", data={"query": "x"}, headers=auth_headers(keys["t1"]), timeout=10
        )
        assert r.status_code == 200  # the slots are free again
    finally:
        release.set()
        backend.close()


def test_backend_failures_are_prometheus_errors(served: Callable[..., str], keys: dict[str, str]) -> None:
    h = auth_headers(keys["t1"])
    dead = served(f"http://127.0.0.1:{free_port()}")
    r = requests.post(f"{dead}/api/v1/query", data={"query": "x"}, headers=h, timeout=10)
    assert is_prometheus_error(r, 502, "unavailable")

    def slow(seen: Seen) -> Reply:
        time.sleep(3.5)
        return _json_reply(seen)

    def text(seen: Seen) -> Reply:
        return 500, b"oops <html>", {"Content-Type": "text/html"}

    def huge(seen: Seen) -> Reply:
        return 200, b"[" + b"1," * 600 + b"1]", {}

    for reply, settings, status, error_type in (
        (slow, {"timeout": 1.0}, 504, "timeout"),
        (text, {}, 502, "unavailable"),
        (huge, {"max_answer_bytes": 1000}, 502, "unavailable"),
    ):
        backend = ScriptedBackend(reply)
        try:
            url = served(backend.url, **settings)
            started = time.perf_counter()
            r = requests.post(f"{url}/api/v1/query", data={"query": "x"}, headers=h, timeout=30)
            assert is_prometheus_error(r, status, error_type), r.text
            assert "oops" not in r.text and time.perf_counter() - started < 3.4
            assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
        finally:
            backend.close()


def test_backend_errors_pass_through_unchanged(
    client: TestClient, backend: ScriptedBackend, keys: dict[str, str]
) -> None:
    error = {"status": "error", "errorType": "bad_data", "error": "1:5: parse error: something"}
    backend.reply = lambda seen: (400, json.dumps(error).encode(), {})
    r = client.post("/api/v1/query", data={"query": "x"}, headers=auth_headers(keys["t1"]))
    assert r.status_code == 400 and r.json() == error


def test_compressed_answers_pass_through(
    client: TestClient, backend: ScriptedBackend, keys: dict[str, str]
) -> None:
    body = json.dumps(EMPTY_VECTOR).encode()

    def zipped(seen: Seen) -> Reply:
        if "gzip" in seen.headers.get("accept-encoding", ""):
            return 200, gzip.compress(body), {"Content-Encoding": "gzip"}
        return 200, body, {}

    backend.reply = zipped
    r = client.post(
        "/api/v1/query", data={"query": "x"}, headers={**auth_headers(keys["t1"]), "Accept-Encoding": "gzip"}
    )
    assert r.headers["content-encoding"] == "gzip" and r.json() == EMPTY_VECTOR
    r = client.post(
        "/api/v1/query",
        data={"query": "x"},
        headers={**auth_headers(keys["t1"]), "Accept-Encoding": "identity"},
    )
    assert "content-encoding" not in r.headers and r.content == body


# --- backend-native enforcement ---------------------------------------------------------------------


def test_victoriametrics_gets_extra_label(
    tmp_path: Path, backend: ScriptedBackend, keys: dict[str, str]
) -> None:
    with make_client(tmp_path, backend, backend_kind="victoriametrics") as client:
        client.post(
            "/api/v1/query", data={"query": "x", "extra_label": "tenant=t2"}, headers=auth_headers(keys["t1"])
        )
        assert backend.last().params[-1] == ("extra_label", "tenant=t1")
        assert [v for k, v in backend.last().params if k == "extra_label"] == ["tenant=t1"]
        client.get("/api/v1/label/job/values", headers=auth_headers(keys["t1"]))
        assert ("extra_label", "tenant=t1") in backend.last().params
        client.get("/api/v1/metadata", headers=auth_headers(keys["t1"]))
        assert "extra_label" not in dict(backend.last().params)
        client.post("/api/v1/query", data={"query": "x"}, headers=auth_headers(keys["admin"]))
        assert "extra_label" not in dict(backend.last().params)


def test_mimir_gets_the_tenant_as_org_id(
    tmp_path: Path, backend: ScriptedBackend, keys: dict[str, str]
) -> None:
    with make_client(tmp_path, backend, backend_kind="mimir", tenant_header="X-Org") as client:
        client.post("/api/v1/query", data={"query": "x"}, headers={**auth_headers(keys["t1"]), "X-Org": "t2"})
        assert backend.last().headers["x-org"] == "t1"
        client.post(
            "/api/v1/query", data={"query": "x"}, headers={**auth_headers(keys["admin"]), "X-Org": "t1|t2"}
        )
        assert backend.last().headers["x-org"] == "t1|t2"  # all-tenant keys: unchanged
    with make_client(tmp_path, backend) as client:  # prometheus: no org header at all
        client.post(
            "/api/v1/query", data={"query": "x"}, headers={**auth_headers(keys["t1"]), "X-Scope-OrgID": "t2"}
        )
        assert "x-scope-orgid" not in backend.last().headers


# --- the rest -------------------------------------------------------------------------------------


def test_unknown_paths_and_methods(client: TestClient, keys: dict[str, str]) -> None:
    assert is_prometheus_error(
        client.get("/api/v1/rules", headers=auth_headers(keys["t1"])), 404, "not_found"
    )
    assert is_prometheus_error(
        client.get("/api/v1/targets", headers=auth_headers(keys["admin"])), 404, "not_found"
    )
    r = client.put("/api/v1/query", headers=auth_headers(keys["t1"]))
    assert is_prometheus_error(r, 405, "method_not_allowed")


def test_own_metrics(client: TestClient, keys: dict[str, str]) -> None:
    client.post("/api/v1/query", data={"query": "x"}, headers=auth_headers(keys["t1"]))
    client.post("/api/v1/query", data={"query": "x"})
    text = client.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("tenantpulse_gateway_requests_total", (("code", "200"), ("endpoint", "query")))] == 1
    assert samples[("tenantpulse_gateway_requests_total", (("code", "401"), ("endpoint", "query")))] == 1
    assert samples[("tenantpulse_gateway_refusals_total", (("reason", "unauthenticated"),))] == 1
    assert (
        samples[("tenantpulse_gateway_backend_request_duration_seconds_count", (("endpoint", "query"),))] == 1
    )
