"""Dashboard -> deterministic JSON, and stable uids, so regenerated output diffs cleanly."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from grafanalib._gen import DashboardEncoder
from grafanalib.core import Dashboard

from tenantpulse.grafana import grafana_model

UID_MAX = 40  # Grafana refuses longer dashboard uids.


def uid_for(kind: str, name: str) -> str:
    """``tp-<kind>-<slug>``; long names keep a hash suffix so two never share a uid."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "dashboard"
    uid = f"tp-{kind}-{slug}"
    if len(uid) <= UID_MAX:
        return uid
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{uid[: UID_MAX - 9]}-{digest}"


def to_data(dashboard: Dashboard) -> dict[str, Any]:
    """Plain JSON-able dict of a grafanalib dashboard in the model current Grafana reads (grafanalib's
    own encoder, then :mod:`grafana_model`)."""
    return grafana_model.dashboard(json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder)))


def to_json(dashboard: Dashboard | dict[str, Any]) -> str:
    data = dashboard if isinstance(dashboard, dict) else to_data(dashboard)
    return json.dumps(data, sort_keys=True, indent=2) + "\n"
