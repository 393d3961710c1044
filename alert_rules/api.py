"""``/analytics/alerts``: list, add, change and delete alerts in the spec file (admin scope).

Mounted on the exporter app (``exporters.app.ROUTER_MODULES``); configured by the exporter's
``--alerts-spec``, ``--rules-out`` and ``--prometheus-url``. A refused change answers 422 naming the
field, and the rules in force stay exactly as they were. Answers never echo what the caller sent
(``web.errors.spec_error``); an alert of the spec file is named, the caller's own is not.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body, Depends, Request

from tenantpulse.alert_rules.checks import CheckFailed
from tenantpulse.alert_rules.store import AlertStore, Conflict, NotFound, ReloadFailed
from tenantpulse.kernel.errors import SpecError
from tenantpulse.security.keys import ApiKey
from tenantpulse.web.auth import require_scope
from tenantpulse.web.errors import ERROR_RESPONSES, ApiError, redact, spec_error

log = structlog.get_logger("tenantpulse.alerts")
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
        raise ApiError(409, "not_configured", "start the exporter with --alerts-spec FILE --rules-out DIR")
    am_out, am_url = getattr(s, "alertmanager_out", None), getattr(s, "alertmanager_url", None)
    return AlertStore(spec, out, getattr(s, "prometheus_url", None), am_out, am_url)


Store = Annotated[AlertStore, Depends(store)]


@router.get("", summary="All alerts in the spec")
def list_alerts(_: Admin, st: Store) -> dict[str, Any]:
    return {"alerts": guard(st.entries, ())}


@router.get("/{alert_id}", summary="One alert")
def get_alert(alert_id: str, _: Admin, st: Store) -> dict[str, Any]:
    return guard(lambda: st.get(alert_id), (alert_id,))


@router.post(
    "", status_code=201, summary="Add an alert (validated, promtool-checked, then Prometheus reloads)"
)
def create_alert(body: AlertBody, _: Admin, st: Store) -> dict[str, Any]:
    reloaded = guard(lambda: st.add(body), (body,))
    return {"id": body.get("name"), "reloaded": reloaded}


@router.put("/{alert_id}", summary="Replace an alert")
def replace_alert(alert_id: str, body: AlertBody, _: Admin, st: Store) -> dict[str, Any]:
    if body.get("name", alert_id) != alert_id:
        raise ApiError(
            422, "invalid_alert", "name in the body differs from the path; renaming is delete + post", "name"
        )
    reloaded = guard(lambda: st.replace(alert_id, body), (alert_id, body))
    return {"id": alert_id, "reloaded": reloaded}


@router.delete("/{alert_id}", summary="Delete an alert")
def delete_alert(alert_id: str, _: Admin, st: Store) -> dict[str, Any]:
    reloaded = guard(lambda: st.delete(alert_id), (alert_id,))
    return {"id": alert_id, "deleted": True, "reloaded": reloaded}


def guard(action: Any, given: tuple[object, ...]) -> Any:
    """Store exceptions -> API errors naming the field, without what the caller sent (``given``)."""
    try:
        return action()
    except SpecError as exc:
        raise spec_error(exc, "invalid_alert", *given, item_key="alert") from None
    except CheckFailed as exc:
        # promtool's output quotes the rules, hence the caller's input: it goes to the log only.
        log.warning("promtool refused the generated rules", output=str(exc))
        raise ApiError(
            422, "rules_rejected", "promtool refused the rules made from it; the server log has why", "expr"
        ) from None
    except NotFound:
        raise ApiError(404, "not_found", "no alert of this name", "alert_id") from None
    except Conflict:
        reason = "an alert of this name exists; PUT /analytics/alerts/{name} to change it"
        raise ApiError(409, "conflict", reason, "name") from None
    except ReloadFailed as exc:  # Prometheus's refusal may quote the rules
        raise ApiError(502, "reload_failed", redact(str(exc), *given)) from None
