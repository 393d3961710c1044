"""The sidecar's HTTP face: /metrics for Prometheus, health probes, and the seed's ML API.

``/metrics``, ``/healthz`` and ``/readyz`` need no key (Prometheus and kubelets scrape them). The
``/analytics/ml/*`` routes take ``Authorization: Bearer <key>`` from the keys file: ``read`` to see a
tenant's models and forecasts, ``write`` to retrain them; a key bound to one tenant never sees another.
Bad input answers 422 with the offending field named, auth problems 401/403, never a traceback.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from tenantpulse.anomaly_sidecar.exposition import CONTENT_TYPE
from tenantpulse.anomaly_sidecar.facade import PredictiveAnalytics
from tenantpulse.anomaly_sidecar.reader import QueryError
from tenantpulse.anomaly_sidecar.service import SidecarService
from tenantpulse.conventions import indicators
from tenantpulse.conventions.catalog import TENANT_ID_PATTERN
from tenantpulse.kernel.durations import format_duration, parse_duration
from tenantpulse.kernel.errors import UsageError
from tenantpulse.kernel.version import __version__
from tenantpulse.otel.asgi import instrument_app
from tenantpulse.security.audit import AuditLog
from tenantpulse.security.audit_http import AuditTrail
from tenantpulse.security.keys import ANY_TENANT, ApiKey, KeyRing

log = structlog.get_logger("anomaly_sidecar.api")
TenantId = Annotated[str, StringConstraints(pattern=TENANT_ID_PATTERN)]


def _duration(value: str) -> str:
    try:
        parse_duration(value)
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    return value


Duration = Annotated[str, StringConstraints(max_length=32), AfterValidator(_duration)]
_FORBID = ConfigDict(extra="forbid")


class ApiProblem(Exception):
    """An error answer: status, machine code, the field at fault and why."""

    def __init__(self, status: int, error: str, reason: str, field: str | None = None, headers: Any = None):
        super().__init__(reason)
        self.status, self.error, self.reason, self.field, self.headers = status, error, reason, field, headers


class ErrorBody(BaseModel):
    error: str
    field: str | None = None
    reason: str
    detail: list[dict[str, Any]] | None = None


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


bearer = HTTPBearer(auto_error=False, description="An API key from the keys file.")


def _authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> ApiKey:
    if credentials is None:
        raise ApiProblem(
            401,
            "unauthorized",
            "send an API key as 'Authorization: Bearer <key>'",
            "Authorization",
            {"WWW-Authenticate": "Bearer"},
        )
    key = request.app.state.keyring.authenticate(credentials.credentials)
    if key is None:
        raise ApiProblem(
            401, "unauthorized", "unknown or expired API key", "Authorization", {"WWW-Authenticate": "Bearer"}
        )
    return key


def _check(key: ApiKey, tenant: str | None, scope: str, field: str) -> None:
    ok = (
        key.tenant == ANY_TENANT and (scope in key.scopes or "admin" in key.scopes)
        if tenant is None
        else key.allows(tenant, scope)
    )
    if not ok:
        target = f"tenant {tenant!r}" if tenant else "all tenants"
        raise ApiProblem(403, "forbidden", f"key {key.key_id!r} may not {scope} {target}", field)


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _field(loc: tuple[Any, ...]) -> str:
    """``("body", "indicators", 0)`` -> ``indicators[0]``."""
    out = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path") else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


class EraseResponse(BaseModel):
    tenant_id: str
    series: int = Field(description="Models (tenant x indicator) forgotten.")
    state_file_rewritten: bool


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
        responses={422: {"model": ErrorBody}},
    )
    app.state.service = service
    app.state.keyring = keyring
    app.state.audit = audit  # train and erase calls, refused keys (security.audit_http)
    watched = set(service.config.indicators)

    @app.exception_handler(ApiProblem)
    async def problem(_: Request, exc: ApiProblem) -> JSONResponse:
        body = {"error": exc.error, "field": exc.field, "reason": exc.reason}
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        detail = [{"field": _field(tuple(e["loc"])), "reason": e["msg"]} for e in errors]
        body = {
            "error": "invalid_input",
            "field": _field(tuple(first["loc"])),
            "reason": first["msg"],
            "detail": detail,
        }
        return JSONResponse(body, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", error=type(exc).__name__)
        return JSONResponse({"error": "internal", "field": None, "reason": "internal error"}, status_code=500)

    @app.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
    def metrics() -> Response:
        """Scores, bands, forecasts and the sidecar's health in Prometheus text format (no auth)."""
        return Response(service.table.body(), media_type=CONTENT_TYPE)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Alive. ``stale`` says whether Prometheus is currently unreadable (last values still served)."""
        return {
            "status": "ok",
            "stale": service.stale,
            "last_success": service.last_success,
            "series": len(service.registry),
            "query_errors": service.query_errors,
        }

    @app.get("/readyz", responses={503: {"model": ErrorBody}})
    def readyz() -> JSONResponse:
        """Ready once backfill and the first cycle are done."""
        if service.ready.is_set():
            return JSONResponse({"ready": True})
        return JSONResponse({"error": "not_ready", "field": None, "reason": "backfill in progress"}, 503)

    @app.get(
        "/analytics/ml/models",
        response_model=ModelsResponse,
        responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
    )
    def models(
        key: Annotated[ApiKey, Depends(_authenticate)],
        tenant_id: Annotated[str | None, Query(pattern=TENANT_ID_PATTERN)] = None,
    ) -> ModelsResponse:
        """The tracked models: a tenant's (``tenant_id``, default the key's own tenant), or all for a '*' key."""
        tenant = tenant_id or (None if key.tenant == ANY_TENANT else key.tenant)
        _check(key, tenant, "read", "tenant_id")
        rows = [ModelInfo(**m) for m in service.models(tenant)]
        return ModelsResponse(
            threshold=service.bank.threshold, sensitivity=service.config.sensitivity, models=rows
        )

    def _indicators(names: list[str] | None, field: str) -> list[str]:
        for i, name in enumerate(names or []):
            if name not in watched:
                raise ApiProblem(
                    422,
                    "invalid_input",
                    f"not a watched indicator; choose from {sorted(watched)}",
                    f"{field}[{i}]",
                )
        return list(names or service.config.indicators)

    @app.post(
        "/analytics/ml/train",
        response_model=TrainResponse,
        responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 503: {"model": ErrorBody}},
    )
    async def train(
        request: Request, req: TrainRequest, key: Annotated[ApiKey, Depends(_authenticate)]
    ) -> TrainResponse:
        """Relearn the tenant's models from ``window`` of Prometheus history (write scope)."""
        request.state.tenant = req.tenant_id  # for the audit entry
        _check(key, req.tenant_id, "write", "tenant_id")
        names = _indicators(req.indicators, "indicators")
        window = parse_duration(req.window)
        try:
            learned = await run_in_threadpool(service.retrain, req.tenant_id, names, window)
        except QueryError as exc:
            raise ApiProblem(503, "prometheus_unavailable", str(exc)) from None
        rows = [ModelInfo(**m) for m in service.models(req.tenant_id) if m["indicator"] in names]
        return TrainResponse(
            tenant_id=req.tenant_id,
            indicators=names,
            window_seconds=window,
            samples_learned=learned,
            models=rows,
        )

    @app.post(
        "/analytics/ml/predict",
        response_model=PredictResponse,
        responses={
            401: {"model": ErrorBody},
            403: {"model": ErrorBody},
            404: {"model": ErrorBody},
            503: {"model": ErrorBody},
        },
    )
    async def predict(req: PredictRequest, key: Annotated[ApiKey, Depends(_authenticate)]) -> PredictResponse:
        """Forecast the tenant's indicator ``horizon`` ahead with a ``confidence_interval`` band (read scope)."""
        _check(key, req.tenant_id, "read", "tenant_id")
        if req.indicator not in indicators.INDICATORS:
            raise ApiProblem(
                422,
                "invalid_input",
                f"unknown indicator; valid: {sorted(indicators.INDICATORS)}",
                "indicator",
            )
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
            raise ApiProblem(503, "prometheus_unavailable", str(exc)) from None
        result = results.get(req.tenant_id)
        if result is None:
            raise ApiProblem(404, "no_data", "no history for this tenant and indicator", "tenant_id")
        points = [
            ForecastPoint(timestamp=t, mean=_finite(m), lower=_finite(lo), upper=_finite(hi))
            for t, m, lo, hi in zip(
                result.times.tolist(),
                result.mean.tolist(),
                result.lower.tolist(),
                result.upper.tolist(),
                strict=True,
            )
        ]
        live = next(
            (ModelInfo(**m) for m in service.models(req.tenant_id) if m["indicator"] == req.indicator), None
        )
        return PredictResponse(
            tenant_id=req.tenant_id,
            indicator=req.indicator,
            horizon=req.horizon,
            confidence_interval=req.confidence_interval,
            step_seconds=result.step_seconds,
            history_points=result.history_points,
            forecast=points,
            model=live,
        )

    @app.delete(
        "/analytics/tenants/{tenant_id}",
        response_model=EraseResponse,
        responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
    )
    async def erase(
        tenant_id: Annotated[str, PathParam(pattern=TENANT_ID_PATTERN)],
        key: Annotated[ApiKey, Depends(_authenticate)],
    ) -> EraseResponse:
        """Forget the tenant's models and outputs and rewrite the state file without them (admin)."""
        _check(key, tenant_id, "admin", "tenant_id")
        removed = await run_in_threadpool(service.remove_tenant, tenant_id)
        return EraseResponse(tenant_id=tenant_id, **removed)

    app.add_middleware(AuditTrail)
    return instrument_app(app)  # server spans for the ML API when tracing is on
