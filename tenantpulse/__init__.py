"""tenantpulse: multi-tenant analytics and observability for Prometheus, Grafana, Alertmanager and Jaeger."""

__version__ = "0.1.0"
