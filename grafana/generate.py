"""Spec -> every dashboard, then -> files: JSON, provisioning, ConfigMaps (deterministic output)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tenantpulse.grafana import custom, provisioning, realtime, render, slo
from tenantpulse.grafana import spec as s

# What a generated directory holds, so that regenerating removes what is no longer generated (a dashboard
# dropped from the spec, a tenant no longer listed, the files of the other mode) and nothing else.
GENERATED = (
    "dashboards/*.json",
    "dashboards/*/*.json",
    "configmaps/*.yaml",
    "provisioning/*/tenantpulse*.yaml",
)


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


def yaml_text(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, width=120)


def files(spec: s.DashboardsSpec) -> dict[str, str]:
    """Path under the output directory -> content, for one Grafana organisation (organisation 1)."""
    out: dict[str, str] = {}
    for uid, data in sorted(dashboards(spec).items()):
        text = render.to_json(data)
        out[f"dashboards/{uid}.json"] = text
        out[f"configmaps/{uid}.yaml"] = yaml_text(provisioning.configmap(uid, text, spec.grafana))
    out["provisioning/datasources/tenantpulse.yaml"] = yaml_text(provisioning.datasources(spec.grafana))
    out["provisioning/dashboards/tenantpulse.yaml"] = yaml_text(provisioning.dashboard_provider(spec.grafana))
    return out


def replace(out: Path, generated: Mapping[str, str]) -> list[Path]:
    """Write ``generated`` under ``out`` and remove the generated files it no longer holds (a dashboard
    dropped from the spec must not linger in Grafana); returns the files written (sorted)."""
    written = []
    for name, text in sorted(generated.items()):
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    for pattern in GENERATED:
        for stale in out.glob(pattern):
            if stale not in written:
                stale.unlink()
    for folder in out.glob("dashboards/*/"):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return sorted(written)


def write(spec: s.DashboardsSpec, out: Path) -> list[Path]:
    """Write all outputs under ``out``; returns the files written (sorted)."""
    return replace(out, files(spec))
