"""Dashboards as code with grafanalib: tenant, custom, anomaly and SLO dashboards plus provisioning."""
