"""The live view as a route of the gateway (``/dashboards``), reading through the gateway in-process.

A tenant key's queries and ``match[]`` are rewritten by ``gateway.enforce`` exactly as the gateway's
own endpoints rewrite them (refused if they name another tenant), then sent to the gateway's backend
with the tenant (so VictoriaMetrics' ``extra_label`` and Mimir's org header apply too); an all-tenant
key's go to the backend unchanged. The gateway's keys file (re-read on SIGHUP) says who is who.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tenantpulse.gateway.backend import Backend, BackendError
from tenantpulse.gateway.enforce import EnforceError, enforce, enforce_match, tenant_selector
from tenantpulse.grafana import generate
from tenantpulse.grafana import spec as s
from tenantpulse.grafana.live import access
from tenantpulse.grafana.live.app import create_live_app
from tenantpulse.grafana.live.read import Reader, ReadError, data_of

PREFIX = "/dashboards"
# What the gateway shows without a spec of its own: the realtime dashboard, for any tenant.
DEFAULT_SPEC: dict[str, Any] = {"realtime": [{"title": "tenantpulse realtime"}]}
_METHODS = {"query": "POST", "query_range": "POST", "label_values": "GET"}


class GatewayReader:
    def __init__(self, backend: Backend, tenant: str | None) -> None:
        self.backend = backend
        self.tenant = tenant

    def _enforced(self, endpoint: str, params: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """As the gateway's endpoints: every query rewritten, ``match[]`` too (default: the tenant's)."""
        tenant = self.tenant
        if tenant is None:
            return params
        if endpoint != "label_values":
            return [(k, enforce(v, tenant) if k == "query" else v) for k, v in params]
        matches = [v for k, v in params if k == "match[]"] or [tenant_selector(tenant)]
        rest = [(k, v) for k, v in params if k != "match[]"]
        return rest + [("match[]", enforce_match(m, tenant, i + 1)) for i, m in enumerate(matches)]

    def read(self, endpoint: str, path: str, params: list[tuple[str, str]]) -> Any:
        try:
            sent = self._enforced(endpoint, params)
        except EnforceError as exc:
            raise ReadError(f"HTTP {exc.status}: {exc.message}") from None
        if endpoint == "label_values":
            path = Backend.label_values_path(path.split("/")[-2])
        try:
            answer = self.backend.call(endpoint, _METHODS[endpoint], path, sent, self.tenant)
        except BackendError as exc:
            raise ReadError(f"HTTP {exc.status}: {exc.message}") from None
        return data_of(answer.status, answer.body)


class GatewayReaders:
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def reader(self, viewer: access.Viewer) -> Reader:
        return GatewayReader(self.app.state.backend, viewer.tenant)


def mount_live_view(app: FastAPI, dashboards: dict[str, dict[str, Any]] | None = None) -> None:
    """Serve the live view at ``/dashboards`` of the gateway ``app``."""
    boards = dashboards if dashboards is not None else generate.dashboards(s.parse(DEFAULT_SPEC))
    live = create_live_app(boards, lambda: app.state.keyring, GatewayReaders(app), mounted=True)
    app.mount(PREFIX, live)
