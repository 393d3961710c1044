"""The sidecar's HTTP face: /metrics for Prometheus, health probes, and the seed's ML API.

``/metrics``, ``/healthz`` and ``/readyz`` need no key (Prometheus and kubelets scrape them). The
``/analytics/ml/*`` routes take ``Authorization: Bearer <key>`` from the keys file: ``read`` to see a
tenant's models and forecasts, ``write`` to retrain them; a key bound to one tenant never sees another.
Bad input answers 422 with the offending field named, auth problems 401/403, never a traceback: keys,
errors and the request context are ``tenantpulse.web``'s, the same as the exporter's.

ML work is bounded (the limits below, documented in docs/sidecar.md): every duration is at most
``MAX_DURATION_SECONDS``; a forecast reads at most ``MAX_HISTORY_POINTS`` (one range query) and answers
at most ``MAX_FORECAST_POINTS``; a retrain reads at most ``MAX_TRAIN_POINTS`` per indicator and
``MAX_RANGE_QUERIES`` in all (422 naming the field beyond them). It runs on its own ``ML_WORKERS``
threads, at most ``MAX_ML_CALLS_PER_TENANT`` calls per tenant and ``MAX_ML_CALLS`` in all (429 with
``Retry-After`` beyond them), and stops between range queries once its client has gone. The probes
and ``/metrics`` are ``async``: they run on the event loop and never wait for a thread.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from tenantpulse.anomaly_sidecar.exposition import CONTENT_TYPE
from tenantpulse.anomaly_sidecar.facade import (
    ForecastResult,
    Forecasts,
    ForecastUnavailable,
    PredictiveAnalytics,
    forecast_grid,
)
from tenantpulse.anomaly_sidecar.forecast import HISTORY_PER_HORIZON, history_needed
from tenantpulse.anomaly_sidecar.reader import MAX_POINTS_PER_REQUEST, QueryError
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
from tenantpulse.web.compression import metrics_response
from tenantpulse.web.errors import ERROR_RESPONSES, ApiError, ErrorBody
from tenantpulse.web.install import install

TenantId = Annotated[str, StringConstraints(pattern=TENANT_ID_PATTERN)]
T = TypeVar("T")

# --- limits on ML work (docs/sidecar.md, "HTTP API") ------------------------------------------------
MAX_DURATION_SECONDS = 10 * 365 * 86400.0  # any duration field (horizon, history, step, window)
MAX_HISTORY_POINTS = MAX_POINTS_PER_REQUEST  # predict: history / step, so one range query
MAX_FORECAST_POINTS = 2_000  # predict: horizon / step, the points answered
MAX_TRAIN_POINTS = 2 * MAX_POINTS_PER_REQUEST  # train: window / cycle interval, per indicator
MAX_RANGE_QUERIES = 10  # train: range queries per call, over all its indicators
ML_WORKERS = 4  # threads for ML work, apart from the probes and everything else
MAX_ML_CALLS_PER_TENANT = 2  # ML calls of one tenant running or queued at once
MAX_ML_CALLS = 8  # ML calls running or queued at once, all tenants together
ML_RETRY_AFTER_SECONDS = 5  # the Retry-After of a 429 beyond those
DISCONNECT_POLL_SECONDS = 0.25  # how often a waiting ML call checks that its client is still there


def _duration(value: str) -> str:
    """The message says what a duration is, never the value (``parse_duration``'s quotes it, for the CLI)."""
    try:
        seconds = parse_duration(value)
    except UsageError:
        raise ValueError("not a positive duration such as 15s, 5m, 1h or 30d") from None
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"longer than the limit of {format_duration(MAX_DURATION_SECONDS)}")
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
    """The tenant is gone from memory and, unless ``state_file`` is ``not_configured``, from the state file."""

    tenant_id: str
    series: int = Field(description="Models (tenant x indicator) forgotten.")
    memory_erased: bool = Field(description="Always true: models, outputs and /metrics series are gone.")
    state_file: Literal["saved", "not_configured"] = Field(
        description="`saved`: rewritten without the tenant; `not_configured`: the sidecar has no --state-file."
    )
    shard: list[int] = Field(
        description="[index, count] of this replica: with count > 1 the other replicas hold their own share."
    )


# --- routes -------------------------------------------------------------------------------------


def _service(request: Request) -> SidecarService:
    service: SidecarService = request.app.state.service
    return service


Service = Annotated[SidecarService, Depends(_service)]
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "Prometheus could not be read."}
}
BUSY: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorBody, "description": "Too many ML calls at once (with `Retry-After`)."}
}

probes = APIRouter()
"""No key: Prometheus and kubelets scrape these. ``async`` (cheap reads of ready values), so they run on
the event loop and never queue behind work in a thread pool."""


@probes.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
async def metrics(request: Request, service: Service) -> Response:
    """Scores, bands, forecasts and the sidecar's health in Prometheus text format (no auth)."""
    return metrics_response(request, service.table.scrape(), CONTENT_TYPE)


@probes.get("/healthz")
async def healthz(service: Service) -> dict[str, Any]:
    """Alive. ``stale`` says whether Prometheus is currently unreadable (last values still served)."""
    return {
        "status": "ok",
        "stale": service.stale,
        "last_success": service.last_success,
        "series": len(service.registry),
        "query_errors": service.query_errors,
    }


@probes.get("/readyz", responses={503: {"model": ErrorBody}})
async def readyz(service: Service) -> JSONResponse:
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


@ml.post("/train", response_model=TrainResponse, responses={**UNAVAILABLE, **BUSY})
async def train(request: Request, req: TrainRequest, service: Service, key: Key) -> TrainResponse:
    """Relearn the tenant's models from ``window`` of Prometheus history (write scope)."""
    request.state.tenant = req.tenant_id  # for the audit entry
    check_tenant(key, req.tenant_id, "write", "tenant_id")
    names = _watched(service, req.indicators, "indicators")
    window = parse_duration(req.window)
    _check_train_cost(window, service.config.interval, len(names))

    def work(stop: threading.Event) -> int:
        learned = 0
        for name in names:  # one indicator at a time: an abandoned call stops at the next one
            if stop.is_set():
                break
            learned += service.retrain(req.tenant_id, [name], window)
        return learned

    try:
        learned = await _gate(request).run(request, req.tenant_id, work)
    except QueryError as exc:
        raise _unavailable(exc) from None
    rows = [ModelInfo(**m) for m in service.models(req.tenant_id) if m["indicator"] in names]
    return TrainResponse(
        tenant_id=req.tenant_id, indicators=names, window_seconds=window, samples_learned=learned, models=rows
    )


@ml.post(
    "/predict",
    response_model=PredictResponse,
    responses={
        404: {"model": ErrorBody, "description": "`no_data`: no history for this series."},
        409: {
            "model": ErrorBody,
            "description": "`insufficient_history`: less history than the horizon needs; `detail` gives "
            "`needed_seconds` and `have_seconds`.",
        },
        **UNAVAILABLE,
        **BUSY,
    },
)
async def predict(request: Request, req: PredictRequest, service: Service, key: Key) -> PredictResponse:
    """Forecast the tenant's indicator ``horizon`` ahead with a ``confidence_interval`` band (read scope)."""
    check_tenant(key, req.tenant_id, "read", "tenant_id")
    if req.indicator not in indicators.INDICATORS:
        raise ApiError(
            422, "invalid_input", f"unknown indicator; valid: {sorted(indicators.INDICATORS)}", "indicator"
        )
    _check_forecast_cost(req)
    result = await _forecast(request, service, req)
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


NOT_SAVED: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorBody,
        "description": "`state_not_saved`: erased from memory, but the state file (which still holds the "
        "tenant) could not be rewritten; `detail` says what was done. Fix the file and call again.",
    }
}


@tenants.delete("/{tenant_id}", response_model=EraseResponse, responses=NOT_SAVED)
async def erase(
    tenant_id: Annotated[str, PathParam(pattern=TENANT_ID_PATTERN)],
    service: Service,
    _: Annotated[ApiKey, Depends(require_scope("admin"))],
) -> EraseResponse:
    """Forget the tenant's models and outputs and rewrite the state file without them (admin)."""
    done = await run_in_threadpool(service.remove_tenant, tenant_id)
    if done["state_file"] == "failed":
        raise ApiError(
            503,
            "state_not_saved",
            f"erased from memory ({done['series']} models), but the state file could not be saved "
            f"({done['state_error']}): it still holds the tenant, and a restart would bring it back; "
            "make it writable and call again",
            detail=[done],
        )
    shard = [service.config.shard_index, service.config.shard_count]
    return EraseResponse(tenant_id=tenant_id, shard=shard, **done)


def _watched(service: SidecarService, names: list[str] | None, field: str) -> list[str]:
    """``names`` (default every watched indicator, each named once), each of which the sidecar must watch."""
    watched = service.config.indicators
    for i, name in enumerate(names or []):
        if name not in watched:
            raise ApiError(
                422,
                "invalid_input",
                f"not a watched indicator; choose from {sorted(watched)}",
                f"{field}[{i}]",
            )
    return list(dict.fromkeys(names or watched))


def _too_much(field: str, what: str, n: float, limit: int, hint: str) -> ApiError:
    return ApiError(
        422, "invalid_input", f"{what} would be {n:,.0f} points, over the limit of {limit:,}; {hint}", field
    )


def _check_forecast_cost(req: PredictRequest) -> None:
    """422 before any query when the forecast would read or answer more than the limits allow."""
    horizon, span, step = forecast_grid(req.horizon, req.history, req.step)
    needed = history_needed(horizon, step)
    if span < needed:
        field = "history" if span < HISTORY_PER_HORIZON * horizon or not req.step else "step"
        raise ApiError(
            422,
            "invalid_input",
            f"a {format_duration(horizon)} forecast needs at least {format_duration(needed)} of history "
            f"at this step, and {format_duration(span)} was asked",
            field,
        )
    read = math.floor(span / step) + 1
    if read > MAX_HISTORY_POINTS:
        field = "step" if req.step else "history"
        raise _too_much(field, "history / step", read, MAX_HISTORY_POINTS, "raise step or shorten history")
    answered = math.ceil(horizon / step)
    if answered > MAX_FORECAST_POINTS:
        field = "step" if req.step else "horizon"
        raise _too_much(
            field, "horizon / step", answered, MAX_FORECAST_POINTS, "raise step or shorten horizon"
        )


def _check_train_cost(window: float, interval: float, indicators_count: int) -> None:
    """422 before any query when the retrain would read more than the limits allow."""
    points = math.floor(window / interval) + 1
    if points > MAX_TRAIN_POINTS:
        hint = f"shorten window (the cycle step is {format_duration(interval)})"
        raise _too_much("window", "window / cycle step", points, MAX_TRAIN_POINTS, hint)
    queries = indicators_count * math.ceil(points / MAX_POINTS_PER_REQUEST)
    if queries > MAX_RANGE_QUERIES:
        raise ApiError(
            422,
            "invalid_input",
            f"would send {queries} range queries, over the limit of {MAX_RANGE_QUERIES}; "
            "shorten window or train fewer indicators per call",
            "window",
        )


class MlGate:
    """Where ML work runs: its own ``workers`` threads, admitted only while the tenant has fewer than
    ``per_tenant`` calls and all tenants fewer than ``total`` calls running or queued (else 429 with
    ``Retry-After``). A call whose client goes away is told to stop (``stop`` is set) and, if still
    queued, never starts; its slot is freed only when its work has really ended."""

    def __init__(
        self,
        workers: int = ML_WORKERS,
        per_tenant: int = MAX_ML_CALLS_PER_TENANT,
        total: int = MAX_ML_CALLS,
        retry_after: int = ML_RETRY_AFTER_SECONDS,
    ) -> None:
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="sidecar-ml")
        self.per_tenant = per_tenant
        self.total = total
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._calls: dict[str, int] = {}

    def in_flight(self, tenant: str | None = None) -> int:
        """Calls admitted and not yet ended (of ``tenant``, or of all)."""
        with self._lock:
            return self._calls.get(tenant, 0) if tenant is not None else sum(self._calls.values())

    def _admit(self, tenant: str) -> None:
        with self._lock:
            mine = self._calls.get(tenant, 0)
            if mine >= self.per_tenant or sum(self._calls.values()) >= self.total:
                whose = "this tenant's" if mine >= self.per_tenant else "all tenants'"
                limit = self.per_tenant if mine >= self.per_tenant else self.total
                raise ApiError(
                    429,
                    "rate_limited",
                    f"{whose} ML calls are at the limit of {limit} at once; retry later",
                    "tenant_id",
                    headers={"Retry-After": str(self.retry_after)},
                )
            self._calls[tenant] = mine + 1

    def _release(self, tenant: str) -> None:
        with self._lock:
            left = self._calls.get(tenant, 0) - 1
            if left > 0:
                self._calls[tenant] = left
            else:
                self._calls.pop(tenant, None)

    async def run(self, request: Request, tenant: str, work: Callable[[threading.Event], T]) -> T:
        """``work(stop)`` on the ML threads, for ``tenant``; ``stop`` is set once the client has gone."""
        self._admit(tenant)
        stop = threading.Event()

        def job() -> T:
            if stop.is_set():
                raise _Abandoned
            return work(stop)

        try:
            future: Future[T] = self.executor.submit(job)
        except RuntimeError:  # shut down: the server is stopping
            self._release(tenant)
            raise ApiError(503, "shutting_down", "the sidecar is stopping") from None
        future.add_done_callback(lambda _: self._release(tenant))
        waiting = asyncio.wrap_future(future)
        waiting.add_done_callback(_swallow)  # an abandoned call's outcome is nobody's
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=DISCONNECT_POLL_SECONDS)
                if done:
                    return waiting.result()
                if await request.is_disconnected():
                    break
        except asyncio.CancelledError:
            stop.set()
            future.cancel()
            raise
        stop.set()
        future.cancel()  # only if it has not started
        raise ApiError(499, "client_closed_request", "the client went away; the work was stopped")

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class _Abandoned(Exception):
    """A queued ML call whose client went away before it started."""


def _swallow(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _gate(request: Request) -> MlGate:
    gate: MlGate = request.app.state.ml_gate
    return gate


async def _forecast(request: Request, service: SidecarService, req: PredictRequest) -> ForecastResult:
    analytics = PredictiveAnalytics(
        reader=service.reader, rate_window=format_duration(service.config.rate_window)
    )

    def work(stop: threading.Event) -> Forecasts:  # one range query: nothing to stop between
        return analytics.forecast(
            req.indicator, req.horizon, req.confidence_interval, req.tenant_id, req.history, req.step
        )

    try:
        return (await _gate(request).run(request, req.tenant_id, work))[req.tenant_id]
    except QueryError as exc:
        raise _unavailable(exc) from None
    except ForecastUnavailable as exc:
        if exc.needed_seconds is None:
            raise ApiError(404, "no_data", exc.reason, "tenant_id") from None
        figures = {"needed_seconds": exc.needed_seconds, "have_seconds": exc.have_seconds}
        raise ApiError(409, "insufficient_history", exc.reason, "horizon", detail=[figures]) from None


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
    service: SidecarService,
    keyring: KeyRing,
    run_loop: bool = True,
    audit: AuditLog | None = None,
    ml_gate: MlGate | None = None,
) -> FastAPI:
    """The app; with ``run_loop`` the service loop starts and stops (saving state) with the server.

    ``ml_gate`` (default ``MlGate()``, the module's limits) runs the ML calls."""
    gate = ml_gate or MlGate()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_loop:
            service.start()
        try:
            yield
        finally:
            gate.close()
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
    app.state.ml_gate = gate
    app.state.audit = audit  # train and erase calls, refused keys (security.audit_http)
    install(app)  # tenantpulse.web: error handlers, audit trail, request context
    for router in ROUTERS:
        app.include_router(router)
    return instrument_app(app)  # server spans for the ML API when tracing is on
