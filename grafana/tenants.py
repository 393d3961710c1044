"""Per-tenant Grafana: one organisation per tenant, each reading through the gateway with its own key.

Organisations, not folders with teams and permissions in one organisation: datasources belong to an
organisation, and in Grafana OSS every member of an organisation may query every datasource in it
(datasource permissions are an Enterprise feature), through ``/api/ds/query`` if not through a panel.
Folder permissions would hide tenant B's dashboards from tenant A's viewers, not B's datasource. In an
organisation of its own a tenant's users cannot even list another tenant's datasource, and the one key
there is the tenant's read key, which the gateway restricts to that tenant's series whatever the query.

The operators keep organisation 1, Grafana's first: every dashboard as generated for all tenants, read
through the gateway with an all-tenant read key (the gateway passes it through unchanged), and Jaeger for
exemplars. Through the gateway rather than straight at Prometheus, so that Prometheus can take queries
from the gateway alone (the chart's NetworkPolicy): a tenant's organisation admin who edits the URL of
their datasource to point at Prometheus then reaches nothing.

In a tenant's organisation each dashboard has ``$tenant`` pinned (a hidden constant), keeps only the
queries of tenant series (host panels and the SLO objective read series without a tenant label, which
the gateway shows no tenant key) and no Jaeger (traces are not separated by tenant). A realtime dashboard
the spec opens on another tenant is left out.

Keys never go into the files: each datasource refers to a file Grafana reads when it provisions,
``$__file{<keys dir>/<tenant>}`` and for the operators ``$__file{<keys dir>/_operators}`` (no tenant id
starts with ``_``). Files rather than ``$__env{...}``: tenant ids (``acme.eu``) are not environment
variable names, and a Kubernetes Secret mounts as such a directory. ``dashboards push`` reads the same
files and sends the keys through the HTTP API.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

from tenantpulse.conventions import catalog as c
from tenantpulse.grafana import generate, grafana_model, provisioning, render
from tenantpulse.grafana import spec as s
from tenantpulse.grafana import templating as tv
from tenantpulse.grafana.defaults import DEFAULT_KEYS_DIR
from tenantpulse.kernel.errors import UsageError

OPERATORS = "_operators"
OPERATORS_ORG_ID = 1
TENANT_MATCH = f"${tv.TENANT}"


@dataclass(frozen=True)
class Org:
    """A Grafana organisation: a tenant's, or the operators' (``tenant`` None, organisation 1)."""

    tenant: str | None
    org_id: int | None = None  # None: not known yet (``dashboards push`` finds or creates it by name)

    @property
    def slug(self) -> str:
        """The name of its key file and of its dashboards directory."""
        return self.tenant or OPERATORS


OPERATORS_ORG = Org(None, OPERATORS_ORG_ID)


def parse_tenants(text: str, ids_required: bool) -> tuple[Org, ...]:
    """``acme=2,globex=3`` (``acme,globex`` when ``ids_required`` is false) as organisations."""
    orgs: list[Org] = []
    for item in text.split(","):
        tenant, sep, raw_id = (part.strip() for part in item.partition("="))
        if not c.valid_tenant_id(tenant):
            raise UsageError(f"--tenants: {tenant!r} is not a tenant id (must match {c.TENANT_ID_PATTERN})")
        org_id = None
        if sep:
            if not raw_id.isdigit() or int(raw_id) <= OPERATORS_ORG_ID:
                raise UsageError(
                    f"--tenants: organisation id of {tenant!r} must be an integer above {OPERATORS_ORG_ID} "
                    f"(organisation {OPERATORS_ORG_ID} is the operators'), not {raw_id!r}"
                )
            org_id = int(raw_id)
        elif ids_required:
            raise UsageError(
                f"--tenants: give each tenant its Grafana organisation id ({tenant}=ORG_ID): Grafana assigns "
                "them, and a wrong one would show this tenant's data in another organisation "
                "(`tenantpulse dashboards push --per-tenant` creates the organisations and prints their ids)"
            )
        orgs.append(Org(tenant, org_id))
    for attr, what in (("tenant", "tenant"), ("org_id", "organisation id")):
        values = [getattr(o, attr) for o in orgs if getattr(o, attr) is not None]
        twice = sorted({str(v) for v in values if values.count(v) > 1})
        if twice:
            raise UsageError(f"--tenants: {what} {twice[0]} is given twice")
    return tuple(orgs)


def check_keys_dir(path: str) -> str:
    """An absolute directory Grafana's ``$__file{}`` can name: Grafana would expand a ``$`` in it as an
    environment variable, and ``}`` ends the reference."""
    if not path.startswith("/") or any(ch in path for ch in "${}") or any(ch.isspace() for ch in path):
        raise UsageError(
            f"--keys-dir must be an absolute path without '$', '{{', '}}' or spaces, not {path!r}"
        )
    return path.rstrip("/") or "/"


def key_reference(keys_dir: str, org: Org) -> str:
    """What a provisioned datasource holds instead of the key: the file Grafana reads it from."""
    return f"$__file{{{keys_dir.rstrip('/')}/{org.slug}}}"


def datasources(org: Org, target: s.GrafanaTarget, gateway_url: str, key: str) -> list[dict[str, Any]]:
    """The organisation's datasources; ``key`` is its gateway key or a reference to it."""
    if org.tenant is not None:
        return [provisioning.gateway(gateway_url, key, default=True, exemplars=False)]
    # Beside whatever organisation 1 already has (kube-prometheus-stack's default Prometheus): not default.
    return [
        provisioning.gateway(gateway_url, key, default=False, exemplars=True),
        provisioning.jaeger(target.jaeger_url, provisioning.GATEWAY_UID),
    ]


def _variable(template: g.Template) -> dict[str, Any]:
    return grafana_model.variable(json.loads(json.dumps(template.to_json_data(), cls=DashboardEncoder)))


def _tenant_panels(panels: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only the queries that read tenant series; a panel left with none is dropped (it would say No data)."""
    kept = []
    for panel in panels:
        if "panels" in panel:
            panel["panels"] = _tenant_panels(panel["panels"])
        if panel.get("targets"):
            panel["targets"] = [t for t in panel["targets"] if TENANT_MATCH in t.get("expr", "")]
            if not panel["targets"]:
                continue
        kept.append(panel)
    return kept


def _prepared(board: Mapping[str, Any], tenant: str | None) -> dict[str, Any]:
    """The dashboard for one organisation: the gateway datasource selected, and for a tenant's
    organisation ``$tenant`` pinned and the panels without tenant series removed."""
    out = copy.deepcopy(dict(board))
    variables = out["templating"]["list"]
    for variable in variables:
        if variable["type"] == "datasource":
            gateway = {"text": provisioning.GATEWAY_NAME, "value": provisioning.GATEWAY_UID}
            variable["current"] = {"selected": True, **gateway}
    if tenant is not None:
        pinned = _variable(tv.pinned_tenant_variable(tenant))
        out["templating"]["list"] = [pinned if v["name"] == tv.TENANT else v for v in variables]
        out["panels"] = _tenant_panels(out["panels"])
    return out


def dashboards(spec: s.DashboardsSpec, org: Org) -> dict[str, dict[str, Any]]:
    """uid -> dashboard JSON for one organisation (the operators': every dashboard, all tenants)."""
    if org.tenant is not None:
        # A realtime dashboard opened on another tenant would show that tenant's name in its title.
        own = tuple(r for r in spec.realtime if r.tenant in (None, org.tenant))
        spec = dataclasses.replace(spec, realtime=own)
    return {uid: _prepared(board, org.tenant) for uid, board in generate.dashboards(spec).items()}


def files(
    spec: s.DashboardsSpec, orgs: Sequence[Org], gateway_url: str, keys_dir: str = DEFAULT_KEYS_DIR
) -> dict[str, str]:
    """Path -> content for the operators' organisation and each tenant's (``orgs``, ids known): per
    organisation a datasources file, a dashboard provider with its own directory, and the dashboards."""
    out: dict[str, str] = {}
    for org in (OPERATORS_ORG, *orgs):
        assert org.org_id is not None, "provisioning needs every organisation's id"
        name = (
            provisioning.PROVIDER_NAME if org.tenant is None else f"{provisioning.PROVIDER_NAME}-{org.tenant}"
        )
        sources = datasources(org, spec.grafana, gateway_url, key_reference(keys_dir, org))
        provisioned = {"apiVersion": 1, "datasources": [{**d, "orgId": org.org_id} for d in sources]}
        out[f"provisioning/datasources/{name}.yaml"] = generate.yaml_text(provisioned)
        path = f"{spec.grafana.dashboards_path.rstrip('/')}/{org.slug}"
        provider = provisioning.provider(name, org.org_id, spec.grafana.folder, path)
        out[f"provisioning/dashboards/{name}.yaml"] = generate.yaml_text(provider)
        for uid, board in sorted(dashboards(spec, org).items()):
            out[f"dashboards/{org.slug}/{uid}.json"] = render.to_json(board)
    return out
