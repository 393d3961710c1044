"""``/analytics/alert-routing``: read and change the spec's channels, actions and routing (admin scope).

A change regenerates the rules and ``alertmanager.yml`` together, checks them with promtool and
``amtool check-config``, and only then swaps the files in and reloads Prometheus and Alertmanager
(``--alertmanager-out``, ``--alertmanager-url``). A refused change is a 422 naming the field, and
the running config stays. Its own prefix: under ``/analytics/alerts`` it would shadow an alert's name.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body

from tenantpulse.alert_rules.api import Admin, Store, guard
from tenantpulse.alert_rules.store import ROUTING_SECTIONS, ConfigRejected, NoAlertmanager
from tenantpulse.web.errors import ERROR_RESPONSES, ApiError

log = structlog.get_logger("tenantpulse.alerts")
router = APIRouter(prefix="/analytics/alert-routing", tags=["alerts"], responses=ERROR_RESPONSES)
RoutingBody = Annotated[
    dict[str, Any],
    Body(
        description="Any of the spec's `channels`, `actions` and `routing` sections; each given one replaces "
        "the spec's whole section.",
        examples=[
            {
                "channels": {"slack": {"api_url_file": "/run/secrets/slack", "channel": "#alerts"}},
                "routing": {"default_receiver": "slack"},
            }
        ],
    ),
]


@router.get("", summary="Channels, actions and routing of the spec")
def get_routing(_: Admin, st: Store) -> dict[str, Any]:
    return guard(st.routing, ())


@router.put("", summary="Change channels, actions or routing (amtool-checked, then both servers reload)")
def change_routing(body: RoutingBody, _: Admin, st: Store) -> dict[str, Any]:
    try:
        reloaded = guard(lambda: st.set_routing(body), (body,))
    except ConfigRejected as exc:
        # amtool's output quotes the config, hence the caller's input: it goes to the log only.
        log.warning("amtool refused the generated Alertmanager config", output=str(exc))
        reason = "amtool check-config refused the Alertmanager config made from it; the server log has why"
        raise ApiError(422, "config_rejected", reason, _field(body, str(exc))) from None
    except NoAlertmanager as exc:
        raise ApiError(409, "not_configured", str(exc)) from None
    return {"sections": sorted(set(body) & set(ROUTING_SECTIONS)), "reloaded": reloaded}


def _field(body: dict[str, Any], output: str) -> str | None:
    """The key of the change amtool's output names (``group_interval cannot be zero``), else its section."""
    for section, value in body.items():
        for key in value if isinstance(value, dict) else ():
            if re.search(rf"\b{re.escape(str(key))}\b", output):
                return f"{section}.{key}"
    return next(iter(body), None)
