"""Spec -> every dashboard, then -> files: JSON, provisioning, ConfigMaps (deterministic output)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tenantpulse.grafana import custom, provisioning, realtime, render, slo
from tenantpulse.grafana import spec as s


def dashboards(spec: s.DashboardsSpec) -> dict[str, dict[str, Any]]:
    """uid -> dashboard JSON data, for every dashboard the spec asks for."""
    out: dict[str, dict[str, Any]] = {}
    built = [realtime.create_realtime_dashboard(r.tenant, r.widgets, r.title) for r in spec.realtime]
    built += [custom.build(d) for d in spec.dashboards]
    if spec.slo_spec is not None:
        built.append(slo.create_slo_dashboard(spec.slo_spec))
    for dash in built:
        if dash.uid in out:
            raise s.dashboard_error("uid", f"two dashboards would share uid {dash.uid!r}", dash.title)
        out[dash.uid] = render.to_data(dash)
    return out


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, width=120)


def write(spec: s.DashboardsSpec, out: Path) -> list[Path]:
    """Write all outputs under ``out``; returns the files written (sorted)."""
    written: list[Path] = []

    def put(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)

    for uid, data in sorted(dashboards(spec).items()):
        text = render.to_json(data)
        put(out / "dashboards" / f"{uid}.json", text)
        put(out / "configmaps" / f"{uid}.yaml", _yaml(provisioning.configmap(uid, text, spec.grafana)))
    for stale in [*(out / "dashboards").glob("*.json"), *(out / "configmaps").glob("*.yaml")]:
        if stale not in written:  # a dashboard dropped from the spec must not linger in Grafana
            stale.unlink()
    put(
        out / "provisioning" / "datasources" / "tenantpulse.yaml",
        _yaml(provisioning.datasources(spec.grafana)),
    )
    put(
        out / "provisioning" / "dashboards" / "tenantpulse.yaml",
        _yaml(provisioning.dashboard_provider(spec.grafana)),
    )
    return sorted(written)
