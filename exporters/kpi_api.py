"""``/analytics/kpis``: a tenant's custom KPIs over HTTP, with the caps of the Python API (``exporters.kpis``).

``POST`` (``write`` on the body's ``tenant_id``) records a batch of values, declaring a KPI on its first
value (type, help, label names); the batch is planned against the tenant's KPIs and caps and applied
under the collector's lock, whole or not at all. Each value counts against the tenant's ingest rate
limit like an event. ``GET`` (``read``) lists a tenant's KPIs and current values: a tenant key its own,
a ``"*"`` key all tenants' or ``tenant_id``'s. Bad input is a 422 naming ``values[i].<field>``; state is
checked only after the key was allowed the tenant, so a refusal tells nothing about another tenant.
Mounted on the exporter app through ``exporters.app.ROUTER_MODULES``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, WithJsonSchema

from tenantpulse.conventions.catalog import TENANT_ID_PATTERN
from tenantpulse.exporters import kpis
from tenantpulse.exporters.events import IngestError
from tenantpulse.exporters.limits import read_body
from tenantpulse.security.keys import ANY_TENANT
from tenantpulse.web.auth import Key, check_tenant
from tenantpulse.web.errors import ERROR_RESPONSES, ApiError, ErrorBody
from tenantpulse.web.validation import clean_errors

router = APIRouter(prefix="/analytics/kpis", tags=["kpis"], responses=ERROR_RESPONSES)

JSON_TYPES = ("application/json", "text/json")
LABELS_SCHEMA = {
    "type": "object",
    "maxProperties": kpis.MAX_LABELS,
    "propertyNames": {"pattern": kpis.LABEL_NAME_RE.pattern, "not": {"enum": sorted(kpis.RESERVED_LABELS)}},
    "additionalProperties": {"type": "string", "pattern": kpis.LABEL_VALUE_RE.pattern},
    "description": "Label values by label name: exactly the KPI's declared labels (the first value declares them).",
}


class KpiValueIn(BaseModel):
    """One value. Unknown KPIs are declared by their first value; later values may repeat, not change, it."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={  # a counter only goes up (checked with the declaration, ``exporters.kpis``)
            "if": {"required": ["type"], "properties": {"type": {"const": "counter"}}},
            "then": {"properties": {"op": {"not": {"const": "set"}}, "value": {"minimum": 0}}},
        },
    )

    name: Annotated[str, StringConstraints(pattern=kpis.NAME_RE.pattern)]
    value: float = Field(
        ge=-kpis.MAX_VALUE,
        le=kpis.MAX_VALUE,
        allow_inf_nan=False,
        description="A gauge's new value (`set`) or an amount to add (`inc`; a counter's must be >= 0).",
    )
    # Checked by ``exporters.kpis`` (names against the declaration), so no error names a label the
    # client made up.
    labels: Annotated[dict[str, Any], WithJsonSchema(LABELS_SCHEMA)] = Field(default_factory=dict)
    op: Literal["set", "inc"] | None = Field(
        None, description="Default: `set` for a gauge, `inc` for a counter."
    )
    type: Literal["gauge", "counter"] | None = Field(default=None, description="Declaration (default gauge).")
    help: Annotated[str, StringConstraints(max_length=kpis.MAX_HELP)] | None = Field(
        default=None, description="Declaration: shown in reads."
    )


class KpiBatchIn(BaseModel):
    """Values of one tenant's KPIs, recorded in order, all or none."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "t1",
                    "values": [
                        {
                            "name": "queue_depth",
                            "value": 17,
                            "labels": {"region": "eu"},
                            "help": "Jobs waiting.",
                        },
                        {"name": "signups", "value": 3, "type": "counter"},
                    ],
                }
            ]
        },
    )

    tenant_id: Annotated[str, StringConstraints(pattern=TENANT_ID_PATTERN)]
    values: list[KpiValueIn] = Field(min_length=1, max_length=kpis.MAX_WRITES)


class KpiRecorded(BaseModel):
    tenant_id: str
    recorded: int = Field(description="Values recorded.")
    declared: list[str] = Field(description="KPIs this call declared (by their first value).")
    request_id: str | None = None


class KpiPoint(BaseModel):
    labels: dict[str, str]
    value: float


class KpiOut(BaseModel):
    tenant_id: str
    name: str
    type: str
    help: str
    labels: list[str] = Field(description="The declared label names.")
    values: list[KpiPoint]


class KpiList(BaseModel):
    kpis: list[KpiOut]


WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {
        "model": ErrorBody,
        "description": "Body over --max-body-bytes, or more values than the rate-limit burst.",
    },
    415: {"model": ErrorBody, "description": "Content-Type is not JSON."},
    429: {
        "model": ErrorBody,
        "description": "Tenant over its ingest rate (values count as events); `Retry-After`.",
    },
}


def _inlined(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` put in place: the route reads its body itself (bounded),
    so FastAPI does not list the model in ``components`` for a ``$ref`` to point at."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(defs[node["$ref"].removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    inlined: dict[str, Any] = resolve(schema)
    return inlined


BODY = {"required": True, "content": {"application/json": {"schema": _inlined(KpiBatchIn)}}}


@router.post(
    "",
    response_model=KpiRecorded,
    responses=WRITE_RESPONSES,
    openapi_extra={"requestBody": BODY},
    summary="Record values of a tenant's custom KPIs (declares new ones)",
)
async def record(request: Request, key: Key) -> KpiRecorded:
    state = request.app.state
    body = await read_body(request, state.settings.max_body_bytes)
    batch = _parse(body, request.headers.get("content-type"))
    request.state.tenant = batch.tenant_id  # for the access log and the audit entry of a refusal
    check_tenant(key, batch.tenant_id, "write", "tenant_id")
    n = {batch.tenant_id: len(batch.values)}
    if n[batch.tenant_id] > state.limiter.burst:
        raise ApiError(
            413,
            "batch_too_large",
            f"{n[batch.tenant_id]} values exceed the rate-limit burst of {int(state.limiter.burst)}; split the batch",
            field="values",
        )
    state.limiter.acquire(n)
    writes = [kpis.KpiWrite(**v.model_dump()) for v in batch.values]
    try:
        declared = state.collector.record_kpis(batch.tenant_id, writes)
    except IngestError as exc:
        state.limiter.refund(n)
        raise ApiError(exc.status, exc.to_json()["error"], exc.reason, field=exc.field) from None
    return KpiRecorded(
        tenant_id=batch.tenant_id,
        recorded=len(writes),
        declared=declared,
        request_id=request.state.request_id,
    )


@router.get("", response_model=KpiList, summary="A tenant's custom KPIs and their current values")
def list_kpis(
    request: Request,
    key: Key,
    tenant_id: Annotated[
        str | None,
        Query(pattern=TENANT_ID_PATTERN, description="Default: the key's own tenant; all for a '*' key."),
    ] = None,
) -> KpiList:
    tenant = tenant_id or (None if key.tenant == ANY_TENANT else key.tenant)
    request.state.tenant = tenant
    check_tenant(key, tenant, "read", "tenant_id")
    rows = [
        KpiOut(tenant_id=t, name=name, **kpi)
        for t, held in sorted(request.app.state.collector.describe_kpis(tenant).items())
        for name, kpi in sorted(held.items())
    ]
    return KpiList(kpis=rows)


def _parse(body: bytes, content_type: str | None) -> KpiBatchIn:
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media not in JSON_TYPES and not media.endswith("+json"):
        raise ApiError(
            415, "unsupported_media_type", "use Content-Type: application/json", field="Content-Type"
        )
    try:
        return KpiBatchIn.model_validate_json(body)
    except ValidationError as exc:
        errors = clean_errors(exc.errors())
        raise ApiError(
            422, "invalid_input", errors[0]["reason"], field=errors[0]["field"], detail=errors
        ) from None
