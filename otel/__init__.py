"""Tracing and logging: OpenTelemetry to Jaeger over OTLP, exemplars, structlog with correlation ids."""
