"""Alerts as code: a spec compiled to Prometheus rules, rule unit tests and Alertmanager routing."""
