"""tenantpulse: multi-tenant analytics and observability for Prometheus, Grafana, Alertmanager and Jaeger.

The public names below are imported on first use (PEP 562), so ``import tenantpulse`` and the CLI's
``--help`` stay fast and nothing here pulls a component into the kernel's import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tenantpulse.kernel.version import __version__

if TYPE_CHECKING:
    from tenantpulse.alert_rules.manager import AlertManager
    from tenantpulse.alert_rules.spec import Spec, load_spec
    from tenantpulse.anomaly_sidecar.detector import DetectorBank
    from tenantpulse.anomaly_sidecar.facade import AnomalyDetector, PredictiveAnalytics, forecast_series
    from tenantpulse.conventions.catalog import Metric
    from tenantpulse.conventions.indicators import Indicator
    from tenantpulse.exporters.collector import CollectorConfig, MetricsCollector
    from tenantpulse.exporters.events import AppEvent, BusinessFigures, IngestError
    from tenantpulse.grafana.custom import create_custom_dashboard
    from tenantpulse.grafana.realtime import create_realtime_dashboard
    from tenantpulse.grafana.render import to_json as dashboard_json
    from tenantpulse.grafana.spec import DashboardsSpec
    from tenantpulse.grafana.spec import load as load_dashboards_spec
    from tenantpulse.kernel.errors import UsageError

# public name -> (module, attribute)
_EXPORTS: dict[str, tuple[str, str]] = {
    "AlertManager": ("tenantpulse.alert_rules.manager", "AlertManager"),
    "AnomalyDetector": ("tenantpulse.anomaly_sidecar.facade", "AnomalyDetector"),
    "AppEvent": ("tenantpulse.exporters.events", "AppEvent"),
    "BusinessFigures": ("tenantpulse.exporters.events", "BusinessFigures"),
    "CollectorConfig": ("tenantpulse.exporters.collector", "CollectorConfig"),
    "DashboardsSpec": ("tenantpulse.grafana.spec", "DashboardsSpec"),
    "DetectorBank": ("tenantpulse.anomaly_sidecar.detector", "DetectorBank"),
    "Indicator": ("tenantpulse.conventions.indicators", "Indicator"),
    "IngestError": ("tenantpulse.exporters.events", "IngestError"),
    "Metric": ("tenantpulse.conventions.catalog", "Metric"),
    "MetricsCollector": ("tenantpulse.exporters.collector", "MetricsCollector"),
    "PredictiveAnalytics": ("tenantpulse.anomaly_sidecar.facade", "PredictiveAnalytics"),
    "Spec": ("tenantpulse.alert_rules.spec", "Spec"),
    "UsageError": ("tenantpulse.kernel.errors", "UsageError"),
    "create_custom_dashboard": ("tenantpulse.grafana.custom", "create_custom_dashboard"),
    "create_realtime_dashboard": ("tenantpulse.grafana.realtime", "create_realtime_dashboard"),
    "dashboard_json": ("tenantpulse.grafana.render", "to_json"),
    "forecast_series": ("tenantpulse.anomaly_sidecar.facade", "forecast_series"),
    "load_dashboards_spec": ("tenantpulse.grafana.spec", "load"),
    "load_spec": ("tenantpulse.alert_rules.spec", "load_spec"),
}

__all__ = [
    "__version__",
    "AlertManager",
    "AnomalyDetector",
    "AppEvent",
    "BusinessFigures",
    "CollectorConfig",
    "DashboardsSpec",
    "DetectorBank",
    "Indicator",
    "IngestError",
    "Metric",
    "MetricsCollector",
    "PredictiveAnalytics",
    "Spec",
    "UsageError",
    "create_custom_dashboard",
    "create_realtime_dashboard",
    "dashboard_json",
    "forecast_series",
    "load_dashboards_spec",
    "load_spec",
]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'tenantpulse' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
