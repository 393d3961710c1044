"""Client spans for outgoing HTTP calls (the sidecar's Prometheus queries), via the requests instrumentation.

The instrumentation makes one CLIENT span per request and injects the W3C ``traceparent`` header, so
a Prometheus with tracing enabled continues the sidecar's trace. The hook below names Prometheus API
calls by endpoint and records the PromQL, which is what a developer looks for in Jaeger.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from opentelemetry.trace import Span
from requests import PreparedRequest

PROMETHEUS_API = "/api/v1/"


def _promql(request: PreparedRequest) -> str | None:
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    form = parse_qs(body) if isinstance(body, str) else {}
    query = form.get("query") or parse_qs(urlsplit(request.url or "").query).get("query")
    return query[0] if query else None


def name_prometheus_calls(span: Span, request: PreparedRequest) -> None:
    """``POST /api/v1/query`` as the span name, ``db.query.text`` = the PromQL expression."""
    path = urlsplit(request.url or "").path
    at = path.find(PROMETHEUS_API)
    if at < 0 or not span.is_recording():
        return
    endpoint = path[at:]
    span.update_name(f"{request.method} {endpoint}")
    span.set_attribute("url.template", endpoint)
    span.set_attribute("db.system.name", "prometheus")
    query = _promql(request)
    if query is not None:
        span.set_attribute("db.query.text", query)


def instrument_requests() -> None:
    """Trace every ``requests`` call of this process (idempotent)."""
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    instrumentor = RequestsInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(request_hook=name_prometheus_calls)
