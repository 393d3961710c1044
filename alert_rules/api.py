"""``/analytics/alerts``: list, add, change and delete alerts in the spec file (admin scope).

Mounted on the exporter app (``exporters.app.ROUTER_MODULES``); configured by the exporter's
``--alerts-spec``, ``--rules-out`` and ``--prometheus-url``. A refused change answers 422 naming the
alert and the field, and the rules in force stay exactly as they were.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request

from tenantpulse.alert_rules.checks import CheckFailed
from tenantpulse.alert_rules.store import AlertStore, Conflict, NotFound, ReloadFailed
from tenantpulse.kernel.errors import SpecError
from tenantpulse.security.keys import ApiKey
from tenantpulse.web.auth import require_scope
from tenantpulse.web.errors import ERROR_RESPONSES, ApiError

router = APIRouter(prefix="/analytics/alerts", tags=["alerts"], responses=ERROR_RESPONSES)
Admin = Annotated[ApiKey, Depends(require_scope("admin"))]
AlertBody = Annotated[
    dict[str, Any],
    Body(
        description="One alert as in the spec's `alerts` (or `ml_alerts` when it names a `model`).",
        examples=[
            {"name": "HighErrors", "condition": "error_rate > 0.05", "for": "5m", "severity": "critical"}
        ],
    ),
]


def store(request: Request) -> AlertStore:
    s = request.app.state.settings
    spec, out = getattr(s, "alerts_spec", None), getattr(s, "rules_out", None)
    if spec is None or out is None:
        raise ApiError(503, "not_configured", "start the exporter with --alerts-spec FILE --rules-out DIR")
    return AlertStore(spec, out, getattr(s, "prometheus_url", None))


Store = Annotated[AlertStore, Depends(store)]


@router.get("", summary="All alerts in the spec")
def list_alerts(_: Admin, st: Store) -> dict[str, Any]:
    return {"alerts": _guard(st.entries)}


@router.get("/{alert_id}", summary="One alert")
def get_alert(alert_id: str, _: Admin, st: Store) -> dict[str, Any]:
    return _guard(lambda: st.get(alert_id))


@router.post(
    "", status_code=201, summary="Add an alert (validated, promtool-checked, then Prometheus reloads)"
)
def create_alert(body: AlertBody, _: Admin, st: Store) -> dict[str, Any]:
    reloaded = _guard(lambda: st.add(body))
    return {"id": body.get("name"), "reloaded": reloaded}


@router.put("/{alert_id}", summary="Replace an alert")
def replace_alert(alert_id: str, body: AlertBody, _: Admin, st: Store) -> dict[str, Any]:
    if body.get("name", alert_id) != alert_id:
        raise ApiError(
            422, "invalid_alert", "name in the body differs from the path; renaming is delete + post", "name"
        )
    reloaded = _guard(lambda: st.replace(alert_id, body))
    return {"id": alert_id, "reloaded": reloaded}


@router.delete("/{alert_id}", summary="Delete an alert")
def delete_alert(alert_id: str, _: Admin, st: Store) -> dict[str, Any]:
    reloaded = _guard(lambda: st.delete(alert_id))
    return {"id": alert_id, "deleted": True, "reloaded": reloaded}


def _guard(action: Any) -> Any:
    """Store exceptions -> API errors with the alert and field named."""
    try:
        return action()
    except SpecError as exc:
        detail = [{"alert": exc.item, "field": exc.field, "reason": exc.reason}]
        raise ApiError(422, "invalid_alert", str(exc), exc.field, detail=detail) from None
    except CheckFailed as exc:
        raise ApiError(422, "rules_rejected", str(exc), "expr") from None
    except NotFound as exc:
        raise ApiError(404, "not_found", f"no alert {exc.args[0]!r}", "alert_id") from None
    except Conflict as exc:
        raise ApiError(409, "conflict", str(exc), "name") from None
    except ReloadFailed as exc:
        raise ApiError(502, "reload_failed", str(exc)) from None
