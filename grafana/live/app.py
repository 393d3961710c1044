"""The live view's web app: pages, their data as JSON, and the static files.

Routes (under whatever prefix it is mounted at): ``/`` (the dashboards), ``/d/<uid>`` (one dashboard,
``?var-<name>=`` and ``?range=`` as in Grafana's URLs), ``/api/dashboards``, ``/api/dashboards/<uid>``
(its model), ``/api/dashboards/<uid>/data`` (its variables and every panel's data, live), ``/static/*``
and ``/healthz``. Every route but the static files and ``/healthz`` needs a read key; a tenant key's
queries go through the gateway (``Readers``), every other key's straight to Prometheus.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import anyio.to_thread
import requests
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenantpulse.grafana.live import access, model, page
from tenantpulse.grafana.live.evaluate import Limits, evaluate, window
from tenantpulse.grafana.live.read import HttpReader, Reader
from tenantpulse.grafana.live.variables import PREFIX, resolve
from tenantpulse.kernel.durations import format_duration, parse_duration
from tenantpulse.kernel.errors import UsageError
from tenantpulse.security.keys import KeyRing
from tenantpulse.web.errors import ApiError, api_error, http_error
from tenantpulse.web.install import install


class Readers(Protocol):
    def reader(self, viewer: access.Viewer) -> Reader: ...


@dataclass
class HttpReaders:
    """Tenant keys through the gateway at ``gateway_url`` (with the viewer's key), others to Prometheus."""

    prometheus_url: str
    gateway_url: str | None
    timeout: float = 30.0

    def __post_init__(self) -> None:
        self.session = requests.Session()

    def reader(self, viewer: access.Viewer) -> Reader:
        if viewer.tenant is None:
            return HttpReader(self.prometheus_url, None, self.session, self.timeout)
        if self.gateway_url is None:
            raise ApiError(
                403,
                "forbidden",
                "tenant keys read through the gateway, and this live view has none (--gateway-url)",
                field="Authorization",
            )
        return HttpReader(self.gateway_url, viewer.token, self.session, self.timeout)


@dataclass
class LiveView:
    dashboards: dict[str, model.Dashboard]
    keyring: Callable[[], KeyRing]
    readers: Readers
    limits: Limits
    pool: ThreadPoolExecutor

    def board(self, uid: str) -> model.Dashboard:
        found = self.dashboards.get(uid)
        if found is None:
            raise ApiError(404, "not_found", "no dashboard with this uid", field="uid")
        return found

    def range_of(self, request: Request, board: model.Dashboard) -> float:
        text = request.query_params.get("range")
        if text is None:
            return min(max(board.range_seconds, self.limits.min_range), self.limits.max_range)
        try:
            seconds = parse_duration(text)
        except UsageError:
            seconds = 0.0
        low, high = self.limits.min_range, self.limits.max_range
        if not low <= seconds <= high:
            reason = f"a duration from {format_duration(low)} to {format_duration(high)}, such as 1h"
            raise ApiError(400, "invalid_input", reason, field="range")
        return seconds


def _requested(request: Request) -> dict[str, str]:
    out = {}
    for name, value in request.query_params.multi_items():
        if name.startswith(PREFIX):
            out[name.removeprefix(PREFIX)] = value
        elif name != "range":
            raise ApiError(400, "invalid_input", "unknown parameter; use var-<name> and range", field=name)
    return out


def _base(request: Request) -> str:
    return str(request.scope.get("root_path") or "")


def create_live_app(
    dashboards: Mapping[str, Mapping[str, Any]],
    keyring: Callable[[], KeyRing],
    readers: Readers,
    limits: Limits | None = None,
    mounted: bool = False,
) -> FastAPI:
    """``dashboards``: dashboard JSON, as the generators make them (served by their own uids). ``mounted``: inside another
    app of the bundle (the gateway), whose middleware already logs and answers errors."""
    limits = limits or Limits()
    view = LiveView(
        {board.uid: board for board in map(model.read, dashboards.values())},
        keyring,
        readers,
        limits,
        ThreadPoolExecutor(max_workers=limits.concurrency, thread_name_prefix="live-query"),
    )
    app = FastAPI(title="tenantpulse live dashboards", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.live = view
    if mounted:
        app.add_exception_handler(ApiError, api_error)
        app.add_exception_handler(StarletteHTTPException, http_error)
    else:
        install(app)

    def who(request: Request) -> access.Viewer:
        return access.viewer(request, view.keyring())

    def listing() -> list[dict[str, Any]]:
        return [b.summary() for _, b in sorted(view.dashboards.items(), key=lambda kv: kv[1].title)]

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        found = page.static(name)
        if found is None:
            raise ApiError(404, "not_found", "no such file", field="name")
        return Response(found[0], media_type=found[1], headers={"Cache-Control": "max-age=3600"})

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> HTMLResponse:
        who(request)
        return HTMLResponse(page.render("index.html", base=_base(request), dashboards=listing()))

    @app.get("/d/{uid}", response_class=HTMLResponse)
    async def dashboard_page(request: Request, uid: str) -> HTMLResponse:
        who(request)
        board = view.board(uid)
        boot = {
            "uid": uid,
            "base": _base(request),
            "refresh": board.refresh_seconds,
            "range": board.range_seconds,
        }
        html = page.render("dashboard.html", base=_base(request), board=board, boot=boot, others=listing())
        return HTMLResponse(html)

    @app.get("/api/dashboards")
    async def dashboards_json(request: Request) -> list[dict[str, Any]]:
        who(request)
        return listing()

    @app.get("/api/dashboards/{uid}")
    async def dashboard_json(request: Request, uid: str) -> dict[str, Any]:
        who(request)
        board = view.board(uid)
        return {**board.summary(), "panels": [p.view for p in board.panels]}

    @app.get("/api/dashboards/{uid}/data")
    async def data(request: Request, uid: str) -> JSONResponse:
        viewer = who(request)
        board = view.board(uid)
        seconds = view.range_of(request, board)
        requested = _requested(request)
        reader = view.readers.reader(viewer)

        def work() -> dict[str, Any]:
            resolved = resolve(board, requested, viewer.tenant, reader)
            w = window(seconds, view.limits)
            panels = evaluate(board, resolved.values, w, reader, view.pool, view.limits)
            return {
                "variables": resolved.shown,
                "range": format_duration(seconds),
                "start": w.start * 1000,
                "end": w.end * 1000,
                "step": w.step,
                "panels": panels,
            }

        return JSONResponse(await anyio.to_thread.run_sync(work))

    return app
