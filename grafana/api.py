"""``/analytics/dashboards``: generate dashboards from a posted spec and serve their Grafana JSON.

Mounted on the exporter app (``exporters.app.ROUTER_MODULES``). Dashboards span every tenant, so
reading needs a key for all tenants (read or admin) and creating needs admin. A bad spec answers 422
with ``field`` like ``components[2].indicator`` and a reason with the valid choices (never what the
caller sent: ``web.errors.spec_error``); nothing is stored then. Dashboards live in the process's
memory (the realtime dashboard is always there); regenerate files for Grafana with ``tenantpulse
generate dashboards``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse

from tenantpulse.grafana import custom, realtime, render
from tenantpulse.grafana import spec as s
from tenantpulse.kernel.errors import SpecError
from tenantpulse.security.keys import ApiKey
from tenantpulse.web.auth import require_scope
from tenantpulse.web.errors import ERROR_RESPONSES, ApiError, spec_error

router = APIRouter(prefix="/analytics/dashboards", tags=["dashboards"], responses=ERROR_RESPONSES)
Reader = Annotated[ApiKey, Depends(require_scope("read"))]
Admin = Annotated[ApiKey, Depends(require_scope("admin"))]
SpecBody = Annotated[
    dict[str, Any],
    Body(
        description="One custom dashboard as in the spec's `dashboards` list: name, layout, components.",
        examples=[
            {
                "name": "Streaming KPIs",
                "layout": "grid",
                "components": [
                    {"type": "kpi", "title": "Plays / min", "indicator": "plays_per_minute"},
                    {"type": "chart", "indicators": ["request_rate", "errors_per_second"], "width": 18},
                    {"type": "anomaly", "indicator": "request_rate"},
                ],
            }
        ],
    ),
]


def dashboards(request: Request) -> dict[str, dict[str, Any]]:
    """uid -> dashboard JSON for this app, starting with the all-tenant realtime dashboard."""
    state = request.app.state
    if not hasattr(state, "dashboards"):
        board = render.to_data(realtime.create_realtime_dashboard())
        state.dashboards = {board["uid"]: board}
    return state.dashboards


Store = Annotated[dict[str, dict[str, Any]], Depends(dashboards)]


def _summary(board: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": board["uid"],
        "title": board["title"],
        "tags": board.get("tags", []),
        "panels": len(board["panels"]),
    }


@router.get("", summary="Dashboards this exporter has generated")
def list_dashboards(_: Reader, store: Store) -> dict[str, Any]:
    return {"dashboards": [_summary(b) for _, b in sorted(store.items())]}


@router.get("/{dashboard_id}", summary="One dashboard's Grafana JSON (ready for POST /api/dashboards/db)")
def get_dashboard(dashboard_id: str, _: Reader, store: Store) -> dict[str, Any]:
    board = store.get(dashboard_id)
    if board is None:
        raise ApiError(404, "not_found", "no dashboard with this id", field="dashboard_id")
    return board


@router.post(
    "",
    status_code=201,
    summary="Generate a custom dashboard from a spec (201 created, 200 replaced the same uid)",
)
def create_dashboard(body: SpecBody, _: Admin, store: Store) -> JSONResponse:
    try:
        board = render.to_data(custom.build(s.custom_dashboard(body)))
    except SpecError as exc:
        raise spec_error(exc, "invalid_spec", body) from None
    replaced = board["uid"] in store
    store[board["uid"]] = board
    return JSONResponse({**_summary(board), "dashboard": board}, status_code=200 if replaced else 201)
