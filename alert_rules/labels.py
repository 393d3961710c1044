"""Routing labels every generated alert carries; Alertmanager's route tree matches on them."""

from __future__ import annotations

from tenantpulse.alert_rules.spec import AlertSpec, MlAlertSpec, SloSpec

CHANNELS_LABEL = "tenantpulse_channels"
ACTIONS_LABEL = "tenantpulse_actions"


def routing_labels(a: AlertSpec | MlAlertSpec | SloSpec) -> dict[str, str]:
    """Comma-joined channel and action lists (``slack,email``): routes match one item with a regex."""
    labels = {}
    if a.channels:
        labels[CHANNELS_LABEL] = ",".join(a.channels)
    if a.actions:
        labels[ACTIONS_LABEL] = ",".join(a.actions)
    return labels
