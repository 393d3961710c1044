"""Right to erasure: ``DELETE /analytics/tenants/{tenant_id}`` (admin) on the exporter.

Removes the tenant from every place the bundle keeps it and answers what was removed where:

1. the exporter's collector (series, sketches, KPIs) and its rate-limit bucket;
2. Prometheus (``--prometheus-url``), when its admin API is on: ``delete_series`` + ``clean_tombstones``;
3. the anomaly sidecar (``--sidecar-url`` with ``--sidecar-key-file``, an admin key for the sidecar):
   its models, outputs and state file;
4. Prometheus once more, for the sidecar's scores of the tenant scraped between steps 2 and 3.

The exporter stops exposing the tenant first, so no new samples can arrive while the rest is erased.
A place that is not configured is reported ``not_configured``; one that fails is reported with the
reason and the answer says ``complete: false`` (run the call again: every step is idempotent).
Mounted on the exporter app through ``exporters.app.ROUTER_MODULES``; audited by ``security.audit_http``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import requests
from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from exporters.api_models import ERROR_RESPONSES
from exporters.auth import require_scope
from exporters.catalog import TENANT, TENANT_ID_PATTERN
from security.keys import ApiKey

TIMEOUT = 10.0

router = APIRouter(prefix="/analytics/tenants", tags=["erasure"], responses=ERROR_RESPONSES)
Admin = Annotated[ApiKey, Depends(require_scope("admin"))]


class PlaceReport(BaseModel):
    """What happened in one place: ``removed``, ``nothing_held``, ``not_configured`` or ``failed``."""

    status: str
    reason: str | None = None
    detail: dict[str, Any] | None = None


class ErasureReport(BaseModel):
    tenant_id: str
    complete: bool = Field(description="False if some configured place could not be erased; call again.")
    exporter: PlaceReport
    prometheus: PlaceReport
    sidecar: PlaceReport


@router.delete(
    "/{tenant_id}",
    response_model=ErasureReport,
    summary="Erase a tenant's data from the exporter, Prometheus and the sidecar (admin)",
)
async def erase_tenant(
    request: Request,
    tenant_id: Annotated[str, PathParam(pattern=TENANT_ID_PATTERN)],
    _: Admin,
) -> ErasureReport:
    state = request.app.state
    return await run_in_threadpool(
        erase,
        tenant_id,
        state.collector,
        state.limiter,
        getattr(state.settings, "prometheus_url", None),
        getattr(state.settings, "sidecar_url", None),
        getattr(state.settings, "sidecar_key_file", None),
    )


def erase(
    tenant: str,
    collector: Any,
    limiter: Any,
    prometheus_url: str | None,
    sidecar_url: str | None,
    sidecar_key_file: Path | None,
) -> ErasureReport:
    """Every step in order (see the module docstring); never raises for an unreachable place."""
    removed = collector.remove_tenant(tenant)
    limiter.forget(tenant)
    exporter = PlaceReport(status="removed" if removed["removed"] else "nothing_held", detail=removed)
    prometheus = delete_from_prometheus(prometheus_url, tenant)
    sidecar = delete_from_sidecar(sidecar_url, sidecar_key_file, tenant)
    if sidecar.status == "removed" and prometheus.status == "removed":
        prometheus = delete_from_prometheus(prometheus_url, tenant)
    places = (prometheus, sidecar)
    return ErasureReport(
        tenant_id=tenant,
        complete=all(p.status != "failed" for p in places),
        exporter=exporter,
        prometheus=prometheus,
        sidecar=sidecar,
    )


def delete_from_prometheus(url: str | None, tenant: str) -> PlaceReport:
    """Delete every series with the tenant's label, then compact the tombstones away."""
    if not url:
        return PlaceReport(status="not_configured", reason="start the exporter with --prometheus-url")
    base = url.rstrip("/")
    selector = f'{{{TENANT}="{tenant}"}}'  # the tenant id pattern admits nothing that needs escaping
    try:
        for path, params in (
            ("/api/v1/admin/tsdb/delete_series", {"match[]": selector}),
            ("/api/v1/admin/tsdb/clean_tombstones", None),
        ):
            r = requests.post(base + path, params=params, timeout=TIMEOUT)
            if r.status_code != 204:
                return PlaceReport(status="failed", reason=f"{path}: HTTP {r.status_code}: {_error(r)}")
    except requests.RequestException as exc:
        return PlaceReport(status="failed", reason=f"Prometheus unreachable: {type(exc).__name__}")
    return PlaceReport(status="removed", detail={"match": selector})


def delete_from_sidecar(url: str | None, key_file: Path | None, tenant: str) -> PlaceReport:
    if not url:
        return PlaceReport(status="not_configured", reason="start the exporter with --sidecar-url")
    try:
        token = Path(key_file).read_text().strip() if key_file else ""
    except OSError as exc:
        return PlaceReport(status="failed", reason=f"cannot read --sidecar-key-file: {exc.strerror}")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        r = requests.delete(f"{url.rstrip('/')}/analytics/tenants/{tenant}", headers=headers, timeout=TIMEOUT)
    except requests.RequestException as exc:
        return PlaceReport(status="failed", reason=f"sidecar unreachable: {type(exc).__name__}")
    if r.status_code != 200:
        return PlaceReport(status="failed", reason=f"sidecar answered HTTP {r.status_code}: {_error(r)}")
    detail = r.json()
    return PlaceReport(status="removed" if detail.get("series") else "nothing_held", detail=detail)


def _error(r: requests.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:200]
    return str(body.get("error") or body.get("reason") or body)[:200]
