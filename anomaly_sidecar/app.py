"""The sidecar's HTTP face: /metrics for Prometheus, health probes, and the seed's ML API.

``/metrics``, ``/healthz`` and ``/readyz`` need no key (Prometheus and kubelets scrape them). The
``/analytics/ml/*`` routes take ``Authorization: Bearer <key>`` from the keys file: ``read`` to see a
tenant's models and forecasts, ``write`` to retrain them; a key bound to one tenant never sees another.
Bad input answers 422 with the offending field named, auth problems 401/403, never a traceback: keys,
errors and the request context are ``tenantpulse.web``'s, the same as the exporter's.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from tenantpulse.anomaly_sidecar.exposition import CONTENT_TYPE
from tenantpulse.anomaly_sidecar.facade import ForecastResult, PredictiveAnalytics
from tenantpulse.anomaly_sidecar.reader import QueryError
from tenantpulse.anomaly_sidecar.service import SidecarService
from tenantpulse.conventions import indicators
from tenantpulse.conventions.catalog import TENANT_ID_PATTERN
from tenantpulse.kernel.durations import format_duration, parse_duration
from tenantpulse.kernel.errors import UsageError
from tenantpulse.kernel.version import __version__
from tenantpulse.otel.asgi import instrument_app
from tenantpulse.security.audit import AuditLog
from tenantpulse.security.keys import ANY_TENANT, ApiKey, KeyRing
from tenantpulse.web.auth import Key, check_tenant, require_scope
from tenantpulse.web.errors import ERROR_RESPONSES, ApiError, ErrorBody
from tenantpulse.web.install import install

TenantId = Annotated[str, StringConstraints(pattern=TENANT_ID_PATTERN)]


def _duration(value: str) -> str:
    try:
        parse_duration(value)
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    return value


Duration = Annotated[str, StringConstraints(max_length=32), AfterValidator(_duration)]


class ModelInfo(BaseModel):
    """One tracked series and its latest outputs (None until known)."""

    tenant_id: str
    indicator: str
    score: float | None
    expected: float | None
    lower: float | None
    upper: float | None
    forecast: float | None
    forecast_lower: float | None
    forecast_upper: float | None
    observations: int = Field(description="Samples learned so far (survives restarts via the state file).")
    warming_up: bool = Field(description="True until `observations` reaches the warm-up; no alarms before.")
    alarm: bool
    last_sample: float | None = Field(description="Unix time of the newest sample learned.")


class ModelsResponse(BaseModel):
    threshold: float
    sensitivity: str
    models: list[ModelInfo]


class TrainRequest(BaseModel):
    """Forget the tenant's models and learn them again from recent history (e.g. after a planned change)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"tenant_id": "t1", "indicators": ["error_rate"], "window": "6h"}]},
    )
    tenant_id: TenantId
    indicators: list[str] | None = Field(None, description="Watched indicators to retrain; default all.")
    window: Duration = Field("1h", description="History to learn from, e.g. 6h.")


class TrainResponse(BaseModel):
    tenant_id: str
    indicators: list[str]
    window_seconds: float
    samples_learned: int
    models: list[ModelInfo]


class PredictRequest(BaseModel):
    """Forecast one tenant's indicator with a prediction interval."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"tenant_id": "t1", "indicator": "request_rate", "horizon": "1h", "confidence_interval": 0.9}
            ]
        },
    )
    tenant_id: TenantId
    indicator: str
    horizon: Duration = "1h"
    confidence_interval: float = Field(0.95, gt=0, lt=1)
    history: Duration | None = Field(None, description="History to fit; default twice the horizon, >= 1d.")
    step: Duration | None = Field(None, description="Resolution; default keeps the history near 2000 points.")


class ForecastPoint(BaseModel):
    timestamp: float
    mean: float | None
    lower: float | None
    upper: float | None


class PredictResponse(BaseModel):
    tenant_id: str
    indicator: str
    horizon: str
    confidence_interval: float
    step_seconds: float
    history_points: int
    forecast: list[ForecastPoint]
    model: ModelInfo | None = Field(description="The sidecar's live model of this series, if it tracks it.")


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


class EraseResponse(BaseModel):
    tenant_id: str
    series: int = Field(description="Models (tenant x indicator) forgotten.")
    state_file_rewritten: bool


# --- routes -------------------------------------------------------------------------------------


def _service(request: Request) -> SidecarService:
    service: SidecarService = request.app.state.service
    return service


Service = Annotated[SidecarService, Depends(_service)]
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "Prometheus could not be read."}
}

probes = APIRouter()
"""No key: Prometheus and kubelets scrape these."""


@probes.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
def metrics(service: Service) -> Response:
    """Scores, bands, forecasts and the sidecar's health in Prometheus text format (no auth)."""
    return Response(service.table.body(), media_type=CONTENT_TYPE)


@probes.get("/healthz")
def healthz(service: Service) -> dict[str, Any]:
    """Alive. ``stale`` says whether Prometheus is currently unreadable (last values still served)."""
    return {
        "status": "ok",
        "stale": service.stale,
        "last_success": service.last_success,
        "series": len(service.registry),
        "query_errors": service.query_errors,
    }


@probes.get("/readyz", responses={503: {"model": ErrorBody}})
def readyz(service: Service) -> JSONResponse:
    """Ready once backfill and the first cycle are done."""
    if not service.ready.is_set():
        raise ApiError(503, "not_ready", "backfill in progress")
    return JSONResponse({"ready": True})


ml = APIRouter(prefix="/analytics/ml", responses=ERROR_RESPONSES)
"""The seed's ML API: ``read`` to see a tenant's models and forecasts, ``write`` to retrain them."""


@ml.get("/models", response_model=ModelsResponse)
def models(
    service: Service,
    key: Key,
    tenant_id: Annotated[str | None, Query(pattern=TENANT_ID_PATTERN)] = None,
) -> ModelsResponse:
    """The tracked models: a tenant's (``tenant_id``, default the key's own tenant), or all for a '*' key."""
    tenant = tenant_id or (None if key.tenant == ANY_TENANT else key.tenant)
    check_tenant(key, tenant, "read", "tenant_id")
    rows = [ModelInfo(**m) for m in service.models(tenant)]
    return ModelsResponse(
        threshold=service.bank.threshold, sensitivity=service.config.sensitivity, models=rows
    )


@ml.post("/train", response_model=TrainResponse, responses=UNAVAILABLE)
async def train(request: Request, req: TrainRequest, service: Service, key: Key) -> TrainResponse:
    """Relearn the tenant's models from ``window`` of Prometheus history (write scope)."""
    request.state.tenant = req.tenant_id  # for the audit entry
    check_tenant(key, req.tenant_id, "write", "tenant_id")
    names = _watched(service, req.indicators, "indicators")
    window = parse_duration(req.window)
    try:
        learned = await run_in_threadpool(service.retrain, req.tenant_id, names, window)
    except QueryError as exc:
        raise _unavailable(exc) from None
    rows = [ModelInfo(**m) for m in service.models(req.tenant_id) if m["indicator"] in names]
    return TrainResponse(
        tenant_id=req.tenant_id, indicators=names, window_seconds=window, samples_learned=learned, models=rows
    )


@ml.post(
    "/predict",
    response_model=PredictResponse,
    responses={404: {"model": ErrorBody, "description": "No history for this series."}, **UNAVAILABLE},
)
async def predict(req: PredictRequest, service: Service, key: Key) -> PredictResponse:
    """Forecast the tenant's indicator ``horizon`` ahead with a ``confidence_interval`` band (read scope)."""
    check_tenant(key, req.tenant_id, "read", "tenant_id")
    if req.indicator not in indicators.INDICATORS:
        raise ApiError(
            422, "invalid_input", f"unknown indicator; valid: {sorted(indicators.INDICATORS)}", "indicator"
        )
    result = await _forecast(service, req)
    live = next((m for m in service.models(req.tenant_id) if m["indicator"] == req.indicator), None)
    return PredictResponse(
        tenant_id=req.tenant_id,
        indicator=req.indicator,
        horizon=req.horizon,
        confidence_interval=req.confidence_interval,
        step_seconds=result.step_seconds,
        history_points=result.history_points,
        forecast=_points(result),
        model=ModelInfo(**live) if live is not None else None,
    )


tenants = APIRouter(prefix="/analytics/tenants", responses=ERROR_RESPONSES)


@tenants.delete("/{tenant_id}", response_model=EraseResponse)
async def erase(
    tenant_id: Annotated[str, PathParam(pattern=TENANT_ID_PATTERN)],
    service: Service,
    _: Annotated[ApiKey, Depends(require_scope("admin"))],
) -> EraseResponse:
    """Forget the tenant's models and outputs and rewrite the state file without them (admin)."""
    removed = await run_in_threadpool(service.remove_tenant, tenant_id)
    return EraseResponse(tenant_id=tenant_id, **removed)


def _watched(service: SidecarService, names: list[str] | None, field: str) -> list[str]:
    """``names`` (default every watched indicator), each of which the sidecar must watch."""
    watched = service.config.indicators
    for i, name in enumerate(names or []):
        if name not in watched:
            raise ApiError(
                422,
                "invalid_input",
                f"not a watched indicator; choose from {sorted(watched)}",
                f"{field}[{i}]",
            )
    return list(names or watched)


async def _forecast(service: SidecarService, req: PredictRequest) -> ForecastResult:
    analytics = PredictiveAnalytics(
        reader=service.reader, rate_window=format_duration(service.config.rate_window)
    )
    try:
        results = await run_in_threadpool(
            analytics.forecast,
            req.indicator,
            req.horizon,
            req.confidence_interval,
            req.tenant_id,
            req.history,
            req.step,
        )
    except QueryError as exc:
        raise _unavailable(exc) from None
    result = results.get(req.tenant_id)
    if result is None:
        raise ApiError(404, "no_data", "no history for this tenant and indicator", "tenant_id")
    return result


def _points(result: ForecastResult) -> list[ForecastPoint]:
    columns = (result.times, result.mean, result.lower, result.upper)
    return [
        ForecastPoint(timestamp=t, mean=_finite(m), lower=_finite(lo), upper=_finite(hi))
        for t, m, lo, hi in zip(*(c.tolist() for c in columns), strict=True)
    ]


def _unavailable(exc: QueryError) -> ApiError:
    return ApiError(503, "prometheus_unavailable", str(exc))


ROUTERS = (probes, ml, tenants)


# --- the app ------------------------------------------------------------------------------------


def create_app(
    service: SidecarService, keyring: KeyRing, run_loop: bool = True, audit: AuditLog | None = None
) -> FastAPI:
    """The app; with ``run_loop`` the service loop starts and stops (saving state) with the server."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_loop:
            service.start()
        try:
            yield
        finally:
            if run_loop:
                await run_in_threadpool(service.stop)

    app = FastAPI(
        title="tenantpulse anomaly sidecar",
        version=__version__,
        description="Anomaly scores, expected bands and forecasts of per-tenant indicators.",
        lifespan=lifespan,
        responses={500: {"model": ErrorBody, "description": "Internal error (logged with the request id)."}},
    )
    app.state.service = service
    app.state.keyring = keyring
    app.state.audit = audit  # train and erase calls, refused keys (security.audit_http)
    install(app)  # tenantpulse.web: error handlers, audit trail, request context
    for router in ROUTERS:
        app.include_router(router)
    return instrument_app(app)  # server spans for the ML API when tracing is on
