"""The exporter's ASGI app: ingest, per-tenant reads, Prometheus exposition, health.

``create_app(settings)`` builds it with the collector, key ring, settings and rate limiter on
``app.state``. Its own routes are this module's ``router``; other parts of the bundle add theirs by
naming a module that defines ``router`` (an ``APIRouter``) in ``ROUTER_MODULES`` — one line — and take
keys, tenants and errors from ``tenantpulse.web`` (``web.auth``, ``web.errors``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import json
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import structlog
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool

from tenantpulse.conventions.catalog import TENANT_ID_PATTERN
from tenantpulse.conventions.exposition import (
    OPENMETRICS_CONTENT_TYPE,
    OPENMETRICS_MEDIA_TYPE,
    TEXT_CONTENT_TYPE,
    TEXT_MEDIA_TYPE,
)
from tenantpulse.exporters import ingest_parsing
from tenantpulse.exporters.api_models import BatchIn, BusinessIn, EventIn, Health, IngestResult
from tenantpulse.exporters.events import IngestError
from tenantpulse.exporters.exposition import with_process_metrics
from tenantpulse.exporters.limits import TenantRateLimiter, read_body
from tenantpulse.exporters.settings import ExporterSettings
from tenantpulse.exporters.shared_state import SharedStateUnavailable
from tenantpulse.otel.asgi import instrument_app
from tenantpulse.otel.exemplars import current_exemplar
from tenantpulse.otel.tracing import set_attributes
from tenantpulse.security.audit import AuditLog
from tenantpulse.security.keys import ANY_TENANT, ApiKey, KeyRing
from tenantpulse.web.auth import (
    Key,
    allowed,
    authenticate,
    bearer,
    check_tenant,
    check_tenants,
    require_scope,
)
from tenantpulse.web.compression import metrics_response
from tenantpulse.web.errors import ERROR_RESPONSES, ApiError, ErrorBody
from tenantpulse.web.install import install

if TYPE_CHECKING:
    from tenantpulse.exporters.collector import CollectorConfig, MetricsCollector
    from tenantpulse.exporters.redis_limits import RedisRateLimiter
    from tenantpulse.exporters.redis_state import RedisTenantState

# Modules whose ``router`` is mounted on the exporter app (e.g. "tenantpulse.alert_rules.api"). One line per part.
ROUTER_MODULES: tuple[str, ...] = (
    "tenantpulse.alert_rules.api",
    "tenantpulse.alert_rules.routing_api",
    "tenantpulse.grafana.api",
    "tenantpulse.security.erasure",
    "tenantpulse.exporters.kpi_api",
)

log = structlog.get_logger("tenantpulse.exporter")

REJECT_REASONS = {
    403: "forbidden",
    413: "too_large",
    415: "invalid",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}
T = TypeVar("T")


def create_app(
    settings: ExporterSettings, collector: MetricsCollector | None = None, keyring: KeyRing | None = None
) -> FastAPI:
    """The app, ready to serve; pass ``collector``/``keyring`` to share existing ones (tests, embedding)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_system_metrics_loop(app))
        worker = None
        if app.state.collector.shared is not None:
            from tenantpulse.exporters.stream_worker import StreamWorker

            worker = StreamWorker(app.state.collector, settings.max_batch_events)
            app.state.collector.exposing = worker.exposing
            worker.start()
        app.state.ready = True
        log.info(
            "exporter started", tenants_known=len(app.state.collector.tenants()), keys=len(app.state.keyring)
        )
        try:
            yield
        finally:
            app.state.ready = False
            if worker is not None:
                await run_in_threadpool(worker.stop)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if app.state.collector.shared is not None:
                app.state.collector.shared.redis.close()

    app = FastAPI(
        title="tenantpulse exporter",
        version="1",
        description="Multi-tenant ingest of application events and business figures; Prometheus exposition.",
        lifespan=lifespan,
        responses={500: {"model": ErrorBody, "description": "Internal error (logged with the request id)."}},
    )
    app.state.settings = settings
    app.state.keyring = keyring if keyring is not None else KeyRing.from_file(settings.api_keys_file)
    if collector is None:
        from tenantpulse.exporters.collector import MetricsCollector

        collector = MetricsCollector(collector_config(settings), shared=shared_state(settings))
    app.state.collector = collector
    app.state.limiter = rate_limiter(settings, collector.shared)
    app.state.ready = False

    app.state.audit = AuditLog(settings.audit_log) if settings.audit_log else None
    install(app)  # tenantpulse.web: error handlers, audit trail, request context
    app.include_router(router)
    for name in ROUTER_MODULES:
        app.include_router(importlib.import_module(name).router)
    _document_body_models(app)
    return instrument_app(app)  # server spans when tracing is on; the same app when off


def collector_config(settings: ExporterSettings) -> CollectorConfig:
    from tenantpulse.exporters.collector import CollectorConfig

    return CollectorConfig(
        pseudonym_keys=settings.pseudonym_keys,
        pseudonym_key_current=settings.pseudonym_key_current,
        max_series_per_tenant=settings.max_series_per_tenant,
        max_event_types_per_tenant=settings.max_event_types_per_tenant,
    )


def shared_state(settings: ExporterSettings) -> RedisTenantState | None:
    """The state shared with other replicas (``--redis-url``), or None: one process, all in memory."""
    if settings.redis_url is None:
        return None
    from tenantpulse.exporters.redis_client import RedisConnection
    from tenantpulse.exporters.redis_state import RedisTenantState

    return RedisTenantState(
        RedisConnection(settings.redis_url, settings.redis_cluster),
        settings.max_event_types_per_tenant,
        settings.max_series_per_tenant,
    )


def rate_limiter(
    settings: ExporterSettings, shared: RedisTenantState | None
) -> TenantRateLimiter | RedisRateLimiter:
    """Per process in memory, or one bucket per tenant for all replicas in the shared Redis."""
    if shared is None:
        return TenantRateLimiter(settings.rate_limit, settings.burst)
    from tenantpulse.exporters.redis_limits import RedisRateLimiter

    return RedisRateLimiter(shared.redis, settings.rate_limit, settings.burst)


async def _off_loop(state: Any, call: Callable[..., T], *args: Any) -> T:
    """In memory, ``call`` right here (it never waits); with Redis, in a worker thread, so a slow Redis
    holds up this request and not the event loop (``/metrics``, ``/healthz``)."""
    if state.collector.shared is None:
        return call(*args)
    return await run_in_threadpool(call, *args)


IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _idempotent_commit(state: Any, key: ApiKey, idempotency: str, body: bytes) -> Callable[[Any], None]:
    """With Redis, append the batch's counts under the client's idempotency key (scoped to the API
    key): a batch sent again with it is answered as before and not counted again."""
    digest = hashlib.sha256(body).hexdigest()

    def commit(change: Any) -> None:
        from tenantpulse.exporters.redis_stream import CONFLICT

        status, _ = state.collector.shared.stream.append(
            json.dumps(change), (key.key_id, idempotency), digest
        )
        if status == CONFLICT:
            raise IngestError(IDEMPOTENCY_HEADER, "was used before for another body")

    return commit


def _admit(
    state: Any,
    batch: ingest_parsing.ParsedBatch,
    counts: Counter[str],
    commit: Callable[[Any], None] | None = None,
) -> None:
    """Take the batch's rate-limit tokens and ingest it; the tokens come back if it is refused."""
    state.limiter.acquire(counts)
    try:
        state.collector.ingest(batch.events, batch.business, commit)
    except IngestError as exc:
        state.limiter.refund(counts)
        raise ApiError(exc.status, exc.to_json()["error"], exc.reason, field=batch.where(exc.field)) from None
    except SharedStateUnavailable as exc:
        state.limiter.refund(counts)
        raise exc.api_error() from None


async def _system_metrics_loop(app: FastAPI) -> None:
    while True:
        try:
            await app.state.collector.collect_system_metrics()
        except Exception as exc:  # noqa: BLE001 - host metrics are best effort; ingest goes on
            log.warning("system metrics failed", error=repr(exc))
        await asyncio.sleep(app.state.settings.system_metrics_interval)


# --- routes -------------------------------------------------------------------------------------

INGEST_BODY = {
    "required": True,
    "description": "One event, one business object, a batch `{events, business}` (JSON), or NDJSON: one "
    "event or business object per line. A batch is accepted or rejected whole.",
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/EventIn"},
                    {"$ref": "#/components/schemas/BusinessIn"},
                    {"$ref": "#/components/schemas/BatchIn"},
                ]
            }
        },
        "application/x-ndjson": {
            "schema": {
                "type": "array",
                "minItems": 1,
                "description": "Sent as one JSON object per line (blank lines skipped).",
                "items": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/EventIn"},
                        {"$ref": "#/components/schemas/BusinessIn"},
                    ]
                },
            }
        },
    },
}

LIMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {
        "model": ErrorBody,
        "description": "Body over --max-body-bytes, or a batch over the rate-limit burst.",
    },
    415: {"model": ErrorBody, "description": "Content-Type is neither JSON nor NDJSON."},
    429: {"model": ErrorBody, "description": "Tenant over its ingest rate (events/s); see `Retry-After`."},
}


router = APIRouter()


@router.post(
    "/analytics/metrics",
    response_model=IngestResult,
    responses={**ERROR_RESPONSES, **LIMIT_RESPONSES},
    openapi_extra={"requestBody": INGEST_BODY},
    summary="Ingest app events and business figures",
    tags=["ingest"],
)
async def ingest(request: Request, key: Key) -> IngestResult:
    started = time.perf_counter()
    state = request.app.state
    if key.tenant != ANY_TENANT:
        request.state.tenant = key.tenant
        structlog.contextvars.bind_contextvars(tenant=key.tenant)
    batch: ingest_parsing.ParsedBatch | None = None
    try:
        body = await read_body(request, state.settings.max_body_bytes)
        batch = ingest_parsing.parse(
            body, request.headers.get("content-type"), state.settings.max_batch_events
        )
        check_tenants(key, "write", batch.tenant_fields())
        counts = Counter(batch.tenants())
        idempotency = request.headers.get(IDEMPOTENCY_HEADER)
        commit = None
        if idempotency is not None:
            if not IDEMPOTENCY_RE.fullmatch(idempotency):
                raise ApiError(
                    422, "invalid_input", f"must match {IDEMPOTENCY_RE.pattern}", field=IDEMPOTENCY_HEADER
                )
            if state.collector.shared is not None:
                commit = _idempotent_commit(state, key, idempotency, body)
        await _off_loop(state, _admit, state, batch, counts, commit)
    except ApiError as exc:
        _count_rejected(state.collector, key, exc.status, batch)
        set_attributes(tenant=key.tenant, result=REJECT_REASONS.get(exc.status, "rejected"))
        raise
    elapsed = time.perf_counter() - started
    exemplar = current_exemplar()
    set_attributes(
        tenant=",".join(sorted(counts)),
        batch_size=len(batch.events) + len(batch.business),
        result="accepted",
    )
    for tenant in counts:
        state.collector.observe_request(tenant, elapsed, exemplar)
    return IngestResult(
        accepted_events=len(batch.events),
        accepted_business=len(batch.business),
        request_id=request.state.request_id,
    )


@router.get(
    "/analytics/metrics/aggregated",
    responses=ERROR_RESPONSES,
    summary="Sums across all tenants (admin)",
    tags=["read"],
)
async def aggregated(
    request: Request, key: Annotated[ApiKey, Depends(require_scope("admin"))]
) -> dict[str, Any]:
    return await _off_loop(request.app.state, request.app.state.collector.aggregated)


@router.get(
    "/analytics/metrics/{tenant_id}",
    responses={
        **ERROR_RESPONSES,
        404: {"model": ErrorBody, "description": "No data for this tenant yet."},
    },
    summary="One tenant's current values",
    tags=["read"],
)
async def tenant_metrics(
    request: Request,
    tenant_id: str,
    key: Annotated[ApiKey, Depends(require_scope("read"))],
) -> dict[str, Any]:
    structlog.contextvars.bind_contextvars(tenant=tenant_id)
    collector = request.app.state.collector
    try:  # with Redis the lookup reads it too: off the event loop, like the read
        return await _off_loop(request.app.state, collector.snapshot, tenant_id)
    except KeyError:
        raise ApiError(404, "not_found", "no data for this tenant yet", field="tenant_id") from None


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition, or OpenMetrics when `Accept` asks for it.",
            "content": {TEXT_MEDIA_TYPE: {"schema": {"type": "string"}}, OPENMETRICS_MEDIA_TYPE: {}},
        },
        **ERROR_RESPONSES,
    },
    summary="Prometheus exposition (all tenants, or ?tenant=T)",
    tags=["metrics"],
)
async def metrics(
    request: Request,
    tenant: str | None = Query(None, pattern=TENANT_ID_PATTERN, description="Only this tenant's series."),
) -> Response:
    state = request.app.state
    if state.settings.metrics_auth == "required":
        key = await authenticate(request, await bearer(request))
        check_tenant(key, tenant, "read", "tenant" if tenant else "Authorization")
    openmetrics = OPENMETRICS_MEDIA_TYPE in request.headers.get("accept", "")
    body = await _off_loop(state, state.collector.render, tenant, openmetrics)
    if tenant is None:  # the process's own process_* metrics, like host metrics, only with all tenants
        body = with_process_metrics(body, openmetrics)
    return metrics_response(request, body, OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE)


@router.get("/healthz", response_model=Health, tags=["health"], summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    tags=["health"],
    summary="Ready to take traffic",
    responses={
        503: {
            "model": Health,
            "description": "Still starting or shutting down, or Redis (--redis-url) unreachable.",
        }
    },
)
async def readyz(request: Request) -> Response:
    if not request.app.state.ready:
        return JSONResponse({"status": "starting"}, status_code=503)
    shared = request.app.state.collector.shared
    if shared is not None and not await run_in_threadpool(shared.redis.ping):
        return JSONResponse({"status": "redis_unreachable"}, status_code=503)
    return JSONResponse({"status": "ok"})


def _count_rejected(
    collector: MetricsCollector, key: ApiKey, status: int, batch: ingest_parsing.ParsedBatch | None
) -> None:
    """Count a refusal against tenants the key may write (never a tenant name an attacker made up)."""
    reason = REJECT_REASONS.get(status)
    if reason is None:
        return
    tenants = {t for t in batch.tenants() if allowed(key, t, "write")} if batch is not None else set()
    if not tenants and key.tenant != ANY_TENANT:
        tenants = {key.tenant}
    for tenant in tenants:
        collector.count_rejected(tenant, reason)


# --- OpenAPI ------------------------------------------------------------------------------------


def _document_body_models(app: FastAPI) -> None:
    """Add the ingest body models to ``components.schemas`` (the route reads its body itself)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            _, defs = models_json_schema(
                [(m, "validation") for m in (EventIn, BusinessIn, BatchIn)],
                ref_template="#/components/schemas/{model}",
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs["$defs"])
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
