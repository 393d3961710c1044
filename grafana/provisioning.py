"""Grafana provisioning files and Kubernetes ConfigMaps for the generated dashboards.

The Prometheus datasource carries ``exemplarTraceIdDestinations`` pointing at the Jaeger
datasource, so an exemplar dot on a latency panel opens its trace in one click. Per tenant
(``grafana.tenants``) the Prometheus datasource is the gateway's, holding its key by reference.
"""

from __future__ import annotations

import re
from typing import Any

from tenantpulse.grafana.spec import GrafanaTarget
from tenantpulse.otel.exemplars import TRACE_ID_LABEL

PROMETHEUS_UID = "tenantpulse-prometheus"
JAEGER_UID = "tenantpulse-jaeger"
PROMETHEUS_NAME = "Prometheus"
JAEGER_NAME = "Jaeger"
GATEWAY_UID = "tenantpulse-gateway"
GATEWAY_NAME = "tenantpulse gateway"
BASIC_AUTH_USER = "tenantpulse"
PROVIDER_NAME = "tenantpulse"
CONFIGMAP_LABEL = "grafana_dashboard"
FOLDER_ANNOTATION = "grafana_folder"


def _prometheus(name: str, uid: str, url: str, default: bool, exemplars: bool) -> dict[str, Any]:
    json_data: dict[str, Any] = {"httpMethod": "POST", "timeInterval": "15s"}
    if exemplars:
        json_data["exemplarTraceIdDestinations"] = [{"name": TRACE_ID_LABEL, "datasourceUid": JAEGER_UID}]
    return {
        "name": name,
        "uid": uid,
        "type": "prometheus",
        "access": "proxy",
        "url": url,
        "isDefault": default,
        "editable": False,
        "jsonData": json_data,
    }


def jaeger(url: str, metrics_uid: str = PROMETHEUS_UID) -> dict[str, Any]:
    """The Jaeger datasource; ``metrics_uid`` is the Prometheus datasource its traces link back to."""
    return {
        "name": JAEGER_NAME,
        "uid": JAEGER_UID,
        "type": "jaeger",
        "access": "proxy",
        "url": url,
        "editable": False,
        "jsonData": {"tracesToMetrics": {"datasourceUid": metrics_uid}, "nodeGraph": {"enabled": True}},
    }


def datasources(target: GrafanaTarget) -> dict[str, Any]:
    """``provisioning/datasources`` file: Prometheus (default, exemplars -> Jaeger) and Jaeger."""
    prometheus = _prometheus(PROMETHEUS_NAME, PROMETHEUS_UID, target.prometheus_url, True, True)
    return {"apiVersion": 1, "datasources": [prometheus, jaeger(target.jaeger_url)]}


def gateway(url: str, password: str, default: bool, exemplars: bool) -> dict[str, Any]:
    """A Prometheus datasource reading through the tenantpulse gateway with one key, sent as the password
    of basic auth (the gateway ignores the user name). ``password`` is the key itself (HTTP API) or a
    reference Grafana resolves when it provisions (``$__file{...}``): never a key in a file."""
    source = _prometheus(GATEWAY_NAME, GATEWAY_UID, url, default, exemplars)
    source |= {
        "basicAuth": True,
        "basicAuthUser": BASIC_AUTH_USER,
        "secureJsonData": {"basicAuthPassword": password},
    }
    return source


def provider(name: str, org_id: int, folder: str, path: str) -> dict[str, Any]:
    """``provisioning/dashboards`` file: a file provider reading the JSON under ``path`` into one folder of
    organisation ``org_id`` (which must exist: provisioning cannot create organisations)."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": name,
                "orgId": org_id,
                "folder": folder,
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": path, "foldersFromFilesStructure": False},
            }
        ],
    }


def dashboard_provider(target: GrafanaTarget) -> dict[str, Any]:
    """The single-organisation provider: the generated JSON into ``target.folder`` of organisation 1."""
    return provider(PROVIDER_NAME, 1, target.folder, target.dashboards_path)


def configmap(uid: str, dashboard_json: str, target: GrafanaTarget) -> dict[str, Any]:
    """A ConfigMap the kube-prometheus-stack Grafana sidecar picks up (label ``grafana_dashboard: "1"``)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": re.sub(r"[^a-z0-9-]+", "-", f"tenantpulse-dashboard-{uid}".lower())[:63].rstrip("-"),
            "labels": {CONFIGMAP_LABEL: "1", "app.kubernetes.io/part-of": "tenantpulse"},
            "annotations": {FOLDER_ANNOTATION: target.folder},
        },
        "data": {f"{uid}.json": dashboard_json},
    }
