"""Dashboard variables: the Prometheus datasource, the tenant and the forecast horizon.

Panels refer to the datasource through ``${datasource}`` so the same JSON works in any Grafana,
and to the tenant through ``$tenant`` so one dashboard serves every tenant; in a tenant's own Grafana
organisation (``grafana.tenants``) the same panels get ``$tenant`` from a hidden constant instead.
"""

from __future__ import annotations

from grafanalib import core as g

from tenantpulse.conventions import catalog as c

DATASOURCE = "datasource"
TENANT = "tenant"
HORIZON = "horizon"

DATASOURCE_REF: dict[str, str] = {"type": "prometheus", "uid": f"${{{DATASOURCE}}}"}


def datasource_variable() -> g.Template:
    return g.Template(
        name=DATASOURCE,
        label="Prometheus",
        query="prometheus",
        type="datasource",
        default="Prometheus",
    )


def tenant_variable(default: str | None = None) -> g.Template:
    """Tenants are whatever ``tenant`` label values the exporter's event counter carries."""
    return g.Template(
        name=TENANT,
        label="Tenant",
        query=f"label_values({c.EVENTS.name}, {c.TENANT})",
        dataSource=DATASOURCE_REF,
        default=default,
        refresh=g.REFRESH_ON_TIME_RANGE_CHANGE,
        sort=g.SORT_ALPHA_ASC,
    )


def pinned_tenant_variable(tenant: str) -> g.Template:
    """``$tenant`` fixed to one tenant and hidden (``hide: 2``): in that tenant's organisation there is
    nothing to choose, and a query variable would list the tenants it can see."""
    return g.Template(
        name=TENANT,
        label="Tenant",
        query=tenant,
        type="constant",
        default=tenant,
        hide=g.HIDE_VARIABLE,
    )


def horizon_variable() -> g.Template:
    """Forecast horizons the sidecar publishes for the selected tenant."""
    return g.Template(
        name=HORIZON,
        label="Forecast horizon",
        query=f"label_values({c.FORECAST.selector(tenant=f'${TENANT}')}, {c.HORIZON})",
        dataSource=DATASOURCE_REF,
        refresh=g.REFRESH_ON_TIME_RANGE_CHANGE,
    )


def templating(tenant: str | None = None, horizon: bool = False) -> g.Templating:
    variables = [datasource_variable(), tenant_variable(tenant)]
    if horizon:
        variables.append(horizon_variable())
    return g.Templating(list=variables)
