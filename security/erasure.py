"""Right to erasure: ``DELETE /analytics/tenants/{tenant_id}`` (admin) on the exporter.

Removes the tenant from every place the bundle keeps it and answers what was removed where:

1. the exporter's collector (series, sketches, KPIs) and its rate-limit bucket; with ``--redis-url``,
   also the state the exporter replicas share (place ``redis``: the tenant's keys, deleted in one call,
   and its erasure generation raised, so every other replica drops its in-memory copy at its next
   scrape or ingest of the tenant, before Prometheus scrapes it again);
2. Prometheus (``--prometheus-url``), when its admin API is on: ``delete_series`` + ``clean_tombstones``;
3. the anomaly sidecar (``--sidecar-url`` with ``--sidecar-key-file``, an admin key for the sidecar):
   its models, outputs and state file;
4. Prometheus once more, after every target was scraped again (bounded wait): this removes the
   sidecar's scores scraped between steps 2 and 3 and the staleness markers Prometheus writes for
   vanished series, which would otherwise keep the tenant's label sets in its index. Just before,
   series of the tenant that targets still expose are looked up: a place this call did not reach
   (a sidecar without ``--sidecar-url``, another sidecar shard) would write them again.

The exporter stops exposing the tenant first, so no new samples can arrive while the rest is erased.
Each place is reported ``removed`` or ``nothing_held`` (both: erased), ``not_configured`` or ``failed``
(with the reason), each of the last two with a hint on how to finish. ``complete`` is true only when
all three places are erased: a place that is not configured may still hold the tenant. Every step is
idempotent: fix what the hints say and call again. Mounted on the exporter app through
``exporters.app.ROUTER_MODULES``; audited by ``security.audit_http``.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import requests
from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from tenantpulse.conventions.catalog import NAMESPACE, TENANT, TENANT_ID_PATTERN
from tenantpulse.exporters.shared_state import SharedStateUnavailable
from tenantpulse.kernel.durations import parse_duration
from tenantpulse.kernel.errors import UsageError
from tenantpulse.security.keys import ApiKey
from tenantpulse.web.auth import require_scope
from tenantpulse.web.errors import ERROR_RESPONSES

TIMEOUT = 10.0
MAX_WAIT = 120.0  # seconds to wait for Prometheus's next scrapes before the final deletion
# Prometheus records a scrape's time just before it commits the scrape's samples: give it that moment
# before asking which series targets still expose.
COMMIT_GRACE = 0.5
# Series scraped from the bundle's targets (catalog names have no colon; recording rules' names do).
SCRAPED_NAMES = f"{NAMESPACE}_[a-z0-9_]+"
ERASED = ("removed", "nothing_held")
Status = Literal["removed", "nothing_held", "not_configured", "failed"]

router = APIRouter(prefix="/analytics/tenants", tags=["erasure"], responses=ERROR_RESPONSES)
Admin = Annotated[ApiKey, Depends(require_scope("admin"))]


class PlaceReport(BaseModel):
    """One place: ``removed`` / ``nothing_held`` (erased), ``not_configured`` or ``failed``."""

    status: Status
    reason: str | None = Field(default=None, description="Why the place is not erased.")
    hint: str | None = Field(default=None, description="How to finish the erasure there.")
    detail: dict[str, Any] | None = None


class ErasureReport(BaseModel):
    tenant_id: str
    complete: bool = Field(
        description="True only when the exporter, Prometheus and the sidecar (and Redis, with --redis-url) "
        "were all erased."
    )
    pending: list[str] = Field(description="The places not erased (see their reason and hint).")
    exporter: PlaceReport
    prometheus: PlaceReport
    sidecar: PlaceReport
    redis: PlaceReport | None = Field(
        default=None,
        description="The state the exporter replicas share (--redis-url): unique users, caps, rate-limit "
        "buckets. Null in the embedded default, where the exporter place holds everything.",
    )


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
    shared = delete_from_shared_state(collector, tenant)
    prometheus = delete_from_prometheus(prometheus_url, tenant)
    sidecar = delete_from_sidecar(sidecar_url, sidecar_key_file, tenant)
    vanished = (
        removed["removed"]
        or sidecar.status == "removed"
        or (shared is not None and shared.status == "removed")
        or bool(_get(prometheus.detail, "series"))
    )
    if prometheus.status == "removed" and vanished:
        # Each target's next scrape (and each rule group's next evaluation) writes staleness markers
        # for the series that vanished, which would keep the tenant's label sets in the TSDB.
        # Once every target has been scraped since, delete again: nothing is left to come back,
        # unless a target still exposes the tenant.
        held = _get(prometheus.detail, "series")
        waited = wait_for_scrapes(prometheus_url or "", time.time())
        exposed = still_exposed(prometheus_url or "", tenant) if waited == "done" else None
        prometheus = delete_from_prometheus(prometheus_url, tenant)
        if prometheus.detail is not None:
            prometheus.detail |= {"series": held, "waited_for_scrapes": waited, "still_exposed": exposed}
        if isinstance(exposed, list) and exposed and prometheus.status == "removed":
            prometheus = _exposed_elsewhere(prometheus, exposed, tenant)
    places = {"exporter": exporter, "prometheus": prometheus, "sidecar": sidecar}
    if shared is not None:
        places["redis"] = shared
    pending = [name for name, place in places.items() if place.status not in ERASED]
    return ErasureReport(tenant_id=tenant, complete=not pending, pending=pending, **places)


def delete_from_shared_state(collector: Any, tenant: str) -> PlaceReport | None:
    """The tenant's keys in the Redis the exporter replicas share; None without ``--redis-url``."""
    try:
        erased = collector.erase_shared(tenant)
    except SharedStateUnavailable:
        return _failed("Redis unreachable: the replicas' shared state still holds the tenant")
    if erased is None:
        return None
    return PlaceReport(status="removed" if erased["keys"] else "nothing_held", detail=erased)


def delete_from_prometheus(url: str | None, tenant: str) -> PlaceReport:
    """Delete every series with the tenant's label, then compact the tombstones away."""
    selector = f'{{{TENANT}="{tenant}"}}'  # the tenant id pattern admits nothing that needs escaping
    if not url:
        return PlaceReport(
            status="not_configured",
            reason="the exporter has no --prometheus-url: Prometheus still holds the tenant's series",
            hint="start the exporter with --prometheus-url (Prometheus with --web.enable-admin-api) and "
            f"call again, or delete them in Prometheus: POST /api/v1/admin/tsdb/delete_series?match[]={selector}"
            " then POST /api/v1/admin/tsdb/clean_tombstones",
        )
    base = url.rstrip("/")
    try:
        held = requests.get(f"{base}/api/v1/series", params={"match[]": selector}, timeout=TIMEOUT)
        series = len(held.json().get("data") or []) if held.status_code == 200 else None
        for path, params in (
            ("/api/v1/admin/tsdb/delete_series", {"match[]": selector}),
            ("/api/v1/admin/tsdb/clean_tombstones", None),
        ):
            r = requests.post(base + path, params=params, timeout=TIMEOUT)
            if r.status_code != 204:
                return _failed(f"{path}: HTTP {r.status_code}: {_error(r)}")
    except (requests.RequestException, ValueError, AttributeError) as exc:
        return _failed(f"Prometheus unreachable: {type(exc).__name__}")
    return PlaceReport(status="removed", detail={"match": selector, "series": series})


def _failed(reason: str) -> PlaceReport:
    return PlaceReport(
        status="failed", reason=reason, hint="fix that and call again (every step is idempotent)"
    )


def _get(detail: dict[str, Any] | None, key: str) -> Any:
    return None if detail is None else detail.get(key)


def wait_for_scrapes(url: str, since: float) -> str:
    """Wait until every healthy target was scraped and every rule group evaluated after ``since``.

    Bounded by twice the longest scrape/evaluation interval (at most ``MAX_WAIT``); answers ``done``,
    ``timeout`` or why it could not tell (the erasure goes on either way)."""
    deadline: float | None = None
    while True:
        try:
            intervals, last = _scrape_progress(url.rstrip("/"))
        except (requests.RequestException, ValueError, KeyError, TypeError, UsageError) as exc:
            return f"unknown: {type(exc).__name__}"
        if deadline is None:
            deadline = time.monotonic() + min(MAX_WAIT, 2 * max(intervals, default=0.0) + 1.0)
        if all(t > since for t in last):
            return "done"
        if time.monotonic() >= deadline:
            return "timeout"
        time.sleep(0.1)


def _scrape_progress(base: str) -> tuple[list[float], list[float]]:
    """(scrape and evaluation intervals, last scrape / evaluation times) of healthy targets and rule groups."""
    targets = requests.get(f"{base}/api/v1/targets", params={"state": "active"}, timeout=TIMEOUT).json()
    groups = requests.get(f"{base}/api/v1/rules", timeout=TIMEOUT).json()
    up = [t for t in targets["data"]["activeTargets"] if t["health"] == "up"]
    intervals = [parse_duration(t["scrapeInterval"]) for t in up] + [
        float(g["interval"]) for g in groups["data"]["groups"]
    ]
    last = [_unix(t["lastScrape"]) for t in up] + [
        _unix(g["lastEvaluation"]) for g in groups["data"]["groups"]
    ]
    return intervals, last


def _unix(rfc3339: str) -> float:
    """Prometheus's RFC 3339 times carry nanoseconds; Python parses up to microseconds."""
    head, _, frac = rfc3339.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00").timestamp()


def still_exposed(url: str, tenant: str) -> list[dict[str, Any]] | str:
    """Targets whose latest scrape (after the erasure) still held the tenant's series: ``[{job, instance,
    series}]``, or why it could not tell. Vanished series end in a staleness marker, which an instant
    query skips, so what it returns was exposed again."""
    time.sleep(COMMIT_GRACE)
    query = f'count by (job, instance) ({{{TENANT}="{tenant}",__name__=~"{SCRAPED_NAMES}"}})'
    try:
        r = requests.get(f"{url.rstrip('/')}/api/v1/query", params={"query": query}, timeout=TIMEOUT)
        rows = r.json()["data"]["result"]
        return [
            {
                "job": row["metric"].get("job"),
                "instance": row["metric"].get("instance"),
                "series": int(row["value"][1]),
            }
            for row in rows
        ]
    except (requests.RequestException, ValueError, KeyError, TypeError, IndexError) as exc:
        return f"unknown: {type(exc).__name__}"


def _exposed_elsewhere(report: PlaceReport, exposed: list[dict[str, Any]], tenant: str) -> PlaceReport:
    """Deleted, but targets this call did not reach still expose the tenant: Prometheus will hold it again."""
    where = ", ".join(f"job {e['job']!r} instance {e['instance']!r} ({e['series']} series)" for e in exposed)
    return PlaceReport(
        status="failed",
        reason=f"deleted, but targets this erasure did not reach still expose the tenant: {where}",
        hint=f"erase the tenant there (a sidecar: DELETE /analytics/tenants/{tenant} with its admin key, on "
        "every shard), then call this again so Prometheus drops what it scraped meanwhile",
        detail=report.detail,
    )


def delete_from_sidecar(url: str | None, key_file: Path | None, tenant: str) -> PlaceReport:
    """The sidecar's own erasure; its 503 ``state_not_saved`` (erased from memory only) is a failure."""
    if not url:
        return PlaceReport(
            status="not_configured",
            reason="the exporter has no --sidecar-url: an anomaly sidecar, if one runs, still holds the "
            "tenant's models (and its state file), and Prometheus scrapes its scores again",
            hint=f"call DELETE /analytics/tenants/{tenant} on every sidecar replica with its admin key, then "
            "call this again so Prometheus drops the scores scraped meanwhile; or start the exporter with "
            "--sidecar-url and --sidecar-key-file",
        )
    try:
        token = Path(key_file).read_text().strip() if key_file else ""
    except OSError as exc:
        return _failed(f"cannot read --sidecar-key-file: {exc.strerror}")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        r = requests.delete(f"{url.rstrip('/')}/analytics/tenants/{tenant}", headers=headers, timeout=TIMEOUT)
    except requests.RequestException as exc:
        return _failed(f"sidecar unreachable: {type(exc).__name__}")
    try:
        body = r.json()
    except ValueError:
        body = None
    if r.status_code == 200 and isinstance(body, dict):
        return PlaceReport(status="removed" if body.get("series") else "nothing_held", detail=body)
    if r.status_code == 503 and isinstance(body, dict) and body.get("error") == "state_not_saved":
        detail = body.get("detail")
        return PlaceReport(
            status="failed",
            reason=f"the sidecar answered: {_error(r)}",
            hint="make the sidecar's state file writable (see its log), then call again",
            detail=detail[0] if isinstance(detail, list) and detail and isinstance(detail[0], dict) else None,
        )
    return _failed(f"sidecar answered HTTP {r.status_code}: {_error(r)}")


def _error(r: requests.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:200]
    if not isinstance(body, dict):
        return str(body)[:200]
    return str(body.get("reason") or body.get("error") or body)[:300]
