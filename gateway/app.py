"""The gateway's HTTP face: the Prometheus query API, answered per tenant, in front of any backend.

Grafana's Prometheus datasource points here instead of at Prometheus (VictoriaMetrics, Thanos, Mimir)
and holds a tenant's read key, as a bearer token or as the password of HTTP basic auth. Endpoints, GET
and POST (form-encoded), as Prometheus serves them: ``/api/v1/query``, ``/query_range``, ``/series``,
``/labels``, ``/label/<name>/values``, ``/metadata``, ``/query_exemplars``, ``/status/buildinfo``; and
``/healthz`` (never asks the backend) and ``/metrics`` (the gateway's own), which need no key.

Who sees what (keys and their tenants are the exporter's keys file, ``security.keys``):

- a key with the ``read`` scope (or ``admin``) bound to tenant T: every query and ``match[]`` is
  rewritten by ``gateway.enforce`` so that it reads T's series only, or refused (403) if it names
  another tenant; ``/labels`` and ``/label/<name>/values`` without ``match[]`` get ``match[]={tenant="T"}``;
- a key allowed on all tenants (``tenant: "*"`` with ``read`` or ``admin``): passed through unchanged;
- no key, an unknown or expired one: 401; a key without ``read`` (write-only): 403.

``/api/v1/metadata`` is passed through for every key: it is the metric families' type, help and unit
from the scrape targets (here the catalog's, the same for every tenant), not a tenant's series, and
Grafana needs it for the query editor's hints. It names no series, labels or values; a deployment
whose metric *names* are per-tenant secrets should not share one backend between those tenants.
``/api/v1/status/buildinfo`` is passed through (Grafana reads the backend's flavour and version).

Every answer keeps Prometheus's JSON shape, errors included (``{"status": "error", "errorType",
"error"}``), so Grafana shows the message. Backend answers are passed through as bytes, unparsed (and
still compressed when both sides speak gzip).

Bounded work (``GatewaySettings``, ``docs/gateway.md``): a query or ``match[]`` longer than
``max_query_length`` characters, a ``/query_range`` of more than ``max_points`` points per series, more
than ``max_match`` ``match[]`` or a form body over ``max_body_bytes`` are refused (400/413) before the
backend is asked; at most ``max_concurrent_per_tenant`` calls per tenant are in flight (429 with
``Retry-After`` beyond); the backend gets ``timeout`` as its own query timeout and the gateway stops
waiting a moment later (504); an answer larger than ``max_answer_bytes`` is dropped (502). The probes
and ``/metrics`` run on the event loop and never wait for a backend call (those run on threads).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenantpulse.conventions import catalog as c
from tenantpulse.conventions.exposition import TEXT_CONTENT_TYPE
from tenantpulse.exporters.exposition import HistogramTable, SeriesTable, render_families
from tenantpulse.gateway.backend import (
    DEFAULT_TENANT_HEADER,
    Answer,
    Backend,
    BackendError,
    BackendKind,
)
from tenantpulse.gateway.enforce import EnforceError, enforce, enforce_match, tenant_selector
from tenantpulse.grafana.live.gateway_reader import mount_live_view
from tenantpulse.kernel.durations import parse_duration
from tenantpulse.kernel.errors import UsageError
from tenantpulse.otel.asgi import instrument_app
from tenantpulse.security.keys import ANY_TENANT, ApiKey, KeyRing
from tenantpulse.web.auth import allowed, keyring, presented_key
from tenantpulse.web.compression import metrics_response
from tenantpulse.web.context import RequestContext

log = structlog.get_logger("tenantpulse.gateway")

API = "/api/v1"
MAX_FORM_FIELDS = 1_000
RETRY_AFTER_SECONDS = 1
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_METRIC_NAME = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$")
CHALLENGE = 'Bearer realm="tenantpulse", Basic realm="tenantpulse"'


@dataclass(frozen=True)
class GatewaySettings:
    """What ``tenantpulse gateway`` is started with; the limits are documented in docs/gateway.md."""

    backend_url: str
    api_keys_file: Path | None = None
    backend_kind: BackendKind = "prometheus"
    tenant_header: str = DEFAULT_TENANT_HEADER
    timeout: float = 30.0  # seconds: the backend's query timeout; the gateway waits a moment longer
    max_query_length: int = 16_384  # characters of one query or match[]
    max_points: int = 11_000  # points per series of a range query, as Prometheus's own limit
    max_match: int = 32  # match[] parameters per request
    max_concurrent_per_tenant: int = 8  # backend calls in flight per tenant (all-tenant keys share one)
    max_body_bytes: int = 256 * 1024  # a POST's form body
    max_answer_bytes: int = 64 * 1024 * 1024  # a backend answer, as sent (compressed or not)
    pool_size: int = 32  # connections kept to the backend


class GatewayError(Exception):
    """Raised while handling a request: answered as a Prometheus-shaped error, counted as ``reason``."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        reason: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.reason = reason
        self.headers = headers or {}


def prometheus_error(
    status: int, error_type: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """The error body Prometheus answers with, so Grafana shows ``message``."""
    body = json.dumps({"status": "error", "errorType": error_type, "error": message}, separators=(",", ":"))
    return Response(body.encode(), status, headers=headers, media_type="application/json")


def _bad(message: str, reason: str = "bad_parameter") -> GatewayError:
    return GatewayError(400, "bad_data", message, reason)


# --- the gateway's own metrics ----------------------------------------------------------------------

METRICS = (c.GATEWAY_REQUESTS, c.GATEWAY_REFUSALS, c.GATEWAY_BACKEND_DURATION)


class GatewayMetrics:
    """Counters and the backend latency histogram, updated on the event loop only (no lock)."""

    def __init__(self) -> None:
        self.requests = SeriesTable(c.GATEWAY_REQUESTS, {})
        self.refusals = SeriesTable(c.GATEWAY_REFUSALS, {})
        self.backend = HistogramTable(c.GATEWAY_BACKEND_DURATION, {})

    def request(self, endpoint: str, status: int) -> None:
        self.requests.add((endpoint, str(status)), 1)

    def refusal(self, reason: str) -> None:
        self.refusals.add(reason, 1)

    def backend_call(self, endpoint: str, seconds: float) -> None:
        self.backend.observe(endpoint, seconds)

    def render(self) -> bytes:
        tables: dict[str, list[Any]] = {
            c.GATEWAY_REQUESTS.name: [self.requests],
            c.GATEWAY_REFUSALS.name: [self.refusals],
            c.GATEWAY_BACKEND_DURATION.name: [self.backend],
        }
        return render_families(METRICS, tables, openmetrics=False)


class TenantSlots:
    """Backend calls in flight per tenant; a call over the limit is refused, not queued."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.busy: dict[str, int] = {}

    async def run(self, tenant: str, work: Callable[[], Answer]) -> Answer:
        if self.busy.get(tenant, 0) >= self.limit:
            raise GatewayError(
                429,
                "too_many_requests",
                f"more than {self.limit} queries of this tenant at once; retry in {RETRY_AFTER_SECONDS} s",
                "concurrency",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self.busy[tenant] = self.busy.get(tenant, 0) + 1
        try:
            return await anyio.to_thread.run_sync(work)
        finally:
            self.busy[tenant] -= 1
            if not self.busy[tenant]:
                del self.busy[tenant]


# --- keys -----------------------------------------------------------------------------------------


def authorize(request: Request) -> str | None:
    """The tenant the caller's answers are restricted to, or None for a key allowed on all tenants."""
    token = presented_key(request)
    if token is None:
        raise GatewayError(
            401,
            "unauthorized",
            "send a read key as 'Authorization: Bearer <key>' or as the password of basic auth",
            "unauthenticated",
            {"WWW-Authenticate": CHALLENGE},
        )
    key: ApiKey | None = keyring(request).authenticate(token)
    if key is None:
        raise GatewayError(
            401, "unauthorized", "unknown or expired key", "unauthenticated", {"WWW-Authenticate": CHALLENGE}
        )
    request.state.key_id = key.key_id
    if allowed(key, None, "read"):
        request.state.tenant = ANY_TENANT
        return None
    if key.tenant != ANY_TENANT and key.allows(key.tenant, "read"):
        request.state.tenant = key.tenant
        return key.tenant
    raise GatewayError(403, "forbidden", f"key {key.key_id!r} may not read", "forbidden_key")


# --- parameters -----------------------------------------------------------------------------------


@dataclass
class Params:
    """A request's parameters: the form body's first, then the URL's (as Prometheus reads them)."""

    pairs: list[tuple[str, str]] = field(default_factory=list)

    def first(self, name: str) -> str | None:
        return next((v for k, v in self.pairs if k == name), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]


async def read_params(request: Request, max_body_bytes: int) -> Params:
    pairs: list[tuple[str, str]] = []
    try:
        if request.method == "POST":
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype == "application/x-www-form-urlencoded":
                body = await _body(request, max_body_bytes)
                pairs += parse_qsl(
                    body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
                )
        pairs += parse_qsl(request.url.query, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        raise _bad(f"more than {MAX_FORM_FIELDS} parameters") from None
    return Params(pairs)


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    too_big = GatewayError(
        413,
        "bad_data",
        f"the form body is larger than the gateway's limit of {limit} bytes",
        "body_too_large",
    )
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def parse_time(value: str, name: str) -> float:
    """Unix seconds or RFC 3339, as Prometheus takes ``time``, ``start`` and ``end``."""
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise _bad(f'invalid parameter "{name}": not a Unix time or an RFC 3339 timestamp') from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
    if not math.isfinite(seconds):
        raise _bad(f'invalid parameter "{name}": not a finite time')
    return seconds


def parse_step(value: str, name: str = "step") -> float:
    try:
        return parse_duration(value)
    except UsageError:
        raise _bad(
            f'invalid parameter "{name}": zero, negative or unreadable; give seconds or a duration such as 30s'
        ) from None


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _milliseconds(value: float) -> str:
    return f"{max(1, round(value * 1000))}ms"


class Builder:
    """Turns one request's parameters into the backend's, enforcing the tenant and the limits."""

    def __init__(self, settings: GatewaySettings, params: Params, tenant: str | None) -> None:
        self.settings = settings
        self.params = params
        self.tenant = tenant
        self.out: list[tuple[str, str]] = []

    def expr(self, name: str = "query") -> None:
        raw = self.params.first(name)
        if raw is None or not raw.strip():
            raise _bad(f'invalid parameter "{name}": missing')
        self._length(raw, name)
        if self.tenant is not None:
            try:
                raw = enforce(raw, self.tenant)
            except EnforceError as exc:
                raise GatewayError(exc.status, exc.error_type, exc.message, exc.reason) from None
        self.out.append((name, raw))

    def matches(self, required: bool) -> None:
        """``match[]``: required (``/series``), or for a tenant key all of its series when none is given."""
        raws = self.params.all("match[]")
        if len(raws) > self.settings.max_match:
            raise _bad(f"more than {self.settings.max_match} match[] parameters", "too_many_matches")
        for raw in raws:
            self._length(raw, "match[]")
        if self.tenant is not None:
            if not raws and not required:
                raws = [tenant_selector(self.tenant)]
            try:
                raws = [enforce_match(raw, self.tenant, i + 1) for i, raw in enumerate(raws)]
            except EnforceError as exc:
                raise GatewayError(exc.status, exc.error_type, exc.message, exc.reason) from None
        if not raws and required:
            raise _bad("no match[] parameter provided")
        self.out += [("match[]", raw) for raw in raws]

    def time(self, name: str, required: bool = False) -> float | None:
        raw = self.params.first(name)
        if raw is None or raw == "":
            if required:
                raise _bad(f'invalid parameter "{name}": missing')
            return None
        value = parse_time(raw, name)
        self.out.append((name, _seconds(value)))
        return value

    def step(self) -> float:
        raw = self.params.first("step")
        if raw is None or raw == "":
            raise _bad('invalid parameter "step": missing')
        value = parse_step(raw)
        self.out.append(("step", _milliseconds(value)))
        return value

    def timeout(self) -> None:
        """The client's timeout, never beyond the gateway's own (the backend gets one either way)."""
        raw = self.params.first("timeout")
        limit = self.settings.timeout
        value = min(parse_step(raw, "timeout"), limit) if raw else limit
        self.out.append(("timeout", _milliseconds(value)))

    def integer(self, name: str) -> None:
        raw = self.params.first(name)
        if raw is None or raw == "":
            return
        if not raw.isdigit() or len(raw) > 12:
            raise _bad(f'invalid parameter "{name}": must be a non-negative integer')
        self.out.append((name, raw))

    def metric_name(self) -> None:
        raw = self.params.first("metric")
        if raw:
            if len(raw) > 256 or not _METRIC_NAME.match(raw):
                raise _bad('invalid parameter "metric": not a metric name')
            self.out.append(("metric", raw))

    def _length(self, raw: str, name: str) -> None:
        if len(raw) > self.settings.max_query_length:
            raise _bad(
                f"{name} is {len(raw)} characters long; the gateway's limit is {self.settings.max_query_length}",
                "query_too_long",
            )


def build_query(b: Builder) -> None:
    b.expr()
    b.time("time")
    b.timeout()


def build_query_range(b: Builder) -> None:
    b.expr()
    start = b.time("start", required=True)
    end = b.time("end", required=True)
    step = b.step()
    assert start is not None and end is not None
    if (end - start) / step > b.settings.max_points:
        raise _bad(
            f"exceeded maximum resolution of {b.settings.max_points:,} points per timeseries. "
            "Try decreasing the query resolution (?step=XX)",
            "too_many_points",
        )
    b.timeout()


def build_series(b: Builder) -> None:
    b.matches(required=True)
    b.time("start")
    b.time("end")
    b.integer("limit")


def build_labels(b: Builder) -> None:
    b.matches(required=False)
    b.time("start")
    b.time("end")
    b.integer("limit")


def build_metadata(b: Builder) -> None:
    b.metric_name()
    b.integer("limit")
    b.integer("limit_per_metric")


def build_exemplars(b: Builder) -> None:
    b.expr()
    b.time("start")
    b.time("end")


def build_nothing(b: Builder) -> None:
    return None


@dataclass(frozen=True)
class Endpoint:
    name: str  # the ``endpoint`` label of the gateway's metrics
    path: str  # as served, and as asked of the backend
    backend_method: str  # how the backend is asked: POST where Prometheus takes a form
    build: Callable[[Builder], None]


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("query", f"{API}/query", "POST", build_query),
    Endpoint("query_range", f"{API}/query_range", "POST", build_query_range),
    Endpoint("series", f"{API}/series", "POST", build_series),
    Endpoint("labels", f"{API}/labels", "POST", build_labels),
    Endpoint("label_values", f"{API}/label/{{name}}/values", "GET", build_labels),
    Endpoint("metadata", f"{API}/metadata", "GET", build_metadata),
    Endpoint("query_exemplars", f"{API}/query_exemplars", "POST", build_exemplars),
    Endpoint("buildinfo", f"{API}/status/buildinfo", "GET", build_nothing),
)


# --- the app ----------------------------------------------------------------------------------------


def _pass_through(answer: Answer) -> Response:
    if not answer.content_type.lower().startswith("application/json"):
        kind = answer.content_type.split(";")[0] or "no content type"
        return prometheus_error(
            502, "unavailable", f"the backend answered HTTP {answer.status} ({kind}), not Prometheus JSON"
        )
    headers = {"Content-Type": answer.content_type}
    if answer.content_encoding:
        headers["Content-Encoding"] = answer.content_encoding
    return Response(answer.body, answer.status, headers=headers)


def _handler(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        app = request.app
        settings: GatewaySettings = app.state.settings
        metrics: GatewayMetrics = app.state.metrics
        try:
            tenant = authorize(request)
            builder = Builder(settings, await read_params(request, settings.max_body_bytes), tenant)
            endpoint.build(builder)
            path = endpoint.path
            if endpoint.name == "label_values":
                name = request.path_params["name"]
                if len(name) > 256 or not _LABEL_NAME.match(name):
                    raise _bad("invalid label name")
                path = Backend.label_values_path(name)
            backend: Backend = app.state.backend
            work = partial(
                backend.call,
                endpoint.name,
                endpoint.backend_method,
                path,
                builder.out,
                tenant,
                gzip="gzip" in request.headers.get("accept-encoding", "").lower(),
                org_id=request.headers.get(backend.tenant_header) if tenant is None else None,
            )
            answer = await app.state.slots.run(tenant or ANY_TENANT, work)
            metrics.backend_call(endpoint.name, answer.seconds)
            response = _pass_through(answer)
        except GatewayError as exc:
            if exc.reason:
                metrics.refusal(exc.reason)
            response = prometheus_error(exc.status, exc.error_type, exc.message, exc.headers)
        except BackendError as exc:
            log.warning("backend call failed", endpoint=endpoint.name, error=exc.message)
            response = prometheus_error(exc.status, exc.error_type, exc.message)
        metrics.request(endpoint.name, response.status_code)
        return response

    handle.__name__ = f"gateway_{endpoint.name}"
    return handle


async def healthz(request: Request) -> Response:
    """Alive: answered on the event loop, never waiting for the backend."""
    return Response(b'{"status":"ok"}', media_type="application/json")


async def metrics(request: Request) -> Response:
    return metrics_response(request, request.app.state.metrics.render(), TEXT_CONTENT_TYPE)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's 404 (no such route) and 405, in Prometheus's shape."""
    assert isinstance(exc, StarletteHTTPException)
    request.app.state.metrics.request("other", exc.status_code)
    if exc.status_code == 405:
        return prometheus_error(405, "method_not_allowed", "use GET or POST", {"Allow": "GET, POST"})
    if exc.status_code == 404:
        served = ", ".join(e.path for e in ENDPOINTS)
        return prometheus_error(404, "not_found", f"the gateway serves {served}")
    return prometheus_error(exc.status_code, "bad_data", str(exc.detail))


def create_app(
    settings: GatewaySettings, keys: KeyRing | None = None, backend: Backend | None = None
) -> FastAPI:
    """The gateway, ready to serve. ``keys`` defaults to ``settings.api_keys_file``."""
    app = FastAPI(title="tenantpulse gateway", docs_url=None, redoc_url=None, openapi_url=None)
    if keys is None:
        if settings.api_keys_file is None:
            raise UsageError("the gateway needs a keys file")
        keys = KeyRing.from_file(settings.api_keys_file)
    app.state.settings = settings
    app.state.keyring = keys
    app.state.backend = backend or Backend(
        settings.backend_url,
        settings.backend_kind,
        timeout=settings.timeout,
        pool_size=settings.pool_size,
        max_answer_bytes=settings.max_answer_bytes,
        tenant_header=settings.tenant_header,
    )
    app.state.metrics = GatewayMetrics()
    app.state.slots = TenantSlots(settings.max_concurrent_per_tenant)
    app.state.audit = None
    for endpoint in ENDPOINTS:
        app.add_api_route(endpoint.path, _handler(endpoint), methods=["GET", "POST"])
    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_api_route("/metrics", metrics, methods=["GET"])
    mount_live_view(app)  # the dashboards, live, at /dashboards (grafana.live.gateway_reader)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(RequestContext)  # request id, one access-log line, a JSON 500
    return instrument_app(app)
