"""Grafana provisioning files and Kubernetes ConfigMaps for the generated dashboards.

The Prometheus datasource carries ``exemplarTraceIdDestinations`` pointing at the Jaeger
datasource, so an exemplar dot on a latency panel opens its trace in one click.
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
CONFIGMAP_LABEL = "grafana_dashboard"
FOLDER_ANNOTATION = "grafana_folder"


def datasources(target: GrafanaTarget) -> dict[str, Any]:
    """``provisioning/datasources`` file: Prometheus (default, exemplars -> Jaeger) and Jaeger."""
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": PROMETHEUS_NAME,
                "uid": PROMETHEUS_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": target.prometheus_url,
                "isDefault": True,
                "editable": False,
                "jsonData": {
                    "httpMethod": "POST",
                    "timeInterval": "15s",
                    "exemplarTraceIdDestinations": [{"name": TRACE_ID_LABEL, "datasourceUid": JAEGER_UID}],
                },
            },
            {
                "name": JAEGER_NAME,
                "uid": JAEGER_UID,
                "type": "jaeger",
                "access": "proxy",
                "url": target.jaeger_url,
                "editable": False,
                "jsonData": {
                    "tracesToMetrics": {"datasourceUid": PROMETHEUS_UID},
                    "nodeGraph": {"enabled": True},
                },
            },
        ],
    }


def dashboard_provider(target: GrafanaTarget) -> dict[str, Any]:
    """``provisioning/dashboards`` file: a file provider reading the generated JSON into one folder."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "tenantpulse",
                "orgId": 1,
                "folder": target.folder,
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": target.dashboards_path, "foldersFromFilesStructure": False},
            }
        ],
    }


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
