"""Server spans for the bundle's FastAPI apps, via the OpenTelemetry FastAPI instrumentation.

The instrumentation continues an incoming W3C ``traceparent`` and names spans by route. It is only
installed when tracing is on, so with tracing off the app is exactly the uninstrumented app.
Scrapes and probes (``/metrics``, ``/healthz``, ``/readyz``) are not traced by default: Prometheus
hits them every few seconds and would bury the ingest traces in Jaeger; set
``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS`` (comma-separated regexes) to choose otherwise.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from opentelemetry.trace import TracerProvider

from tenantpulse.otel.tracing import tracing_enabled

# Regexes searched in the request URL (scheme://host/path, no query): exactly these paths, so that
# ``/analytics/metrics`` stays traced.
DEFAULT_EXCLUDED_URLS = r"://[^/]+/(metrics|healthz|readyz)$"


def instrument_app(app: FastAPI, tracer_provider: TracerProvider | None = None) -> FastAPI:
    """Add server spans to ``app`` when tracing is configured (or a provider is given); returns ``app``."""
    if tracer_provider is None and not tracing_enabled():
        return app
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # Read here, not at the instrumentation's import, so the setting in force when the app is built wins.
    excluded = (
        os.environ.get("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS")
        or os.environ.get("OTEL_PYTHON_EXCLUDED_URLS")
        or DEFAULT_EXCLUDED_URLS
    )
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider,
        excluded_urls=excluded,
        exclude_spans=["receive", "send"],  # one span per request, not one per ASGI message
    )
    return app
