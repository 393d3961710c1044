"""Tracing setup from the standard ``OTEL_*`` environment variables, exporting OTLP/HTTP to Jaeger.

OTLP is the default (Jaeger 1.35 and later); ``OTEL_TRACES_EXPORTER=jaeger`` sends Jaeger Thrift to an
older agent or collector instead, with the optional ``jaeger`` extra (``tenantpulse.otel.jaeger``).

Why env vars: every OpenTelemetry SDK, the Jaeger docs and Kubernetes operators speak them, so the
Helm chart and a developer's shell configure the bundle the same way. The SDK itself reads most of
them (``OTEL_TRACES_SAMPLER[_ARG]``, ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT/HEADERS/TIMEOUT``,
``OTEL_BSP_*``, ``OTEL_RESOURCE_ATTRIBUTES``); this module decides *whether* tracing is on, checks the
values the SDK would silently ignore, and installs one global tracer provider per process.

Tracing is on when an OTLP endpoint or ``OTEL_TRACES_EXPORTER`` is set, and off when neither is or
``OTEL_SDK_DISABLED=true``. Off means no provider and no instrumentation at all, so the ingest hot
path pays nothing (see ``benchmarks/bench_tracing_overhead.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from tenantpulse.kernel.errors import UsageError
from tenantpulse.kernel.version import __version__
from tenantpulse.otel.jaeger import check_jaeger_settings, jaeger_exporter

TRACER_NAME = "tenantpulse"

SAMPLERS = frozenset(
    {
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    }
)
EXPORTERS = frozenset({"otlp", "jaeger", "console", "none"})
ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOL_VARS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")

_provider: TracerProvider | None = None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def exporter_choice(environ: Mapping[str, str]) -> str:
    """``otlp``, ``jaeger``, ``console`` or ``none`` from the environment; unknown names are a usage error."""
    if _truthy(environ.get("OTEL_SDK_DISABLED")):
        return "none"
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if named:
        if named not in EXPORTERS:
            raise UsageError(
                f"OTEL_TRACES_EXPORTER={named!r} is not supported; use one of {sorted(EXPORTERS)}"
            )
        choice = named
    else:
        choice = "otlp" if any(environ.get(v) for v in ENDPOINT_VARS) else "none"
    if choice == "otlp":
        check_protocol(environ)
    elif choice == "jaeger":
        check_jaeger_settings(environ)
    return choice


def check_protocol(environ: Mapping[str, str]) -> None:
    """Only OTLP over HTTP/protobuf is installed; asking for gRPC or JSON must not silently send protobuf."""
    for var in PROTOCOL_VARS:
        value = environ.get(var, "").strip()
        if value and value != "http/protobuf":
            raise UsageError(f"{var}={value!r} is not supported; tenantpulse exports OTLP as http/protobuf")


def check_sampler(environ: Mapping[str, str]) -> None:
    """Refuse sampler settings that the SDK would replace by its default with only a log warning."""
    name = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if name and name not in SAMPLERS:
        raise UsageError(f"OTEL_TRACES_SAMPLER={name!r} is not supported; use one of {sorted(SAMPLERS)}")
    arg = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if arg and name.endswith("traceidratio"):
        try:
            ratio = float(arg)
        except ValueError:
            ratio = -1.0
        if not 0.0 <= ratio <= 1.0:
            raise UsageError(f"OTEL_TRACES_SAMPLER_ARG={arg!r} must be a number between 0 and 1")


def build_provider(service_name: str) -> TracerProvider | None:
    """A tracer provider configured from ``os.environ`` (the SDK reads it too), or None when tracing is off."""
    env = os.environ
    check_sampler(env)
    choice = exporter_choice(env)
    if choice == "none":
        return None
    exporter = _exporter(choice)
    name = env.get("OTEL_SERVICE_NAME") or service_name
    resource = Resource.create({SERVICE_NAME: name, SERVICE_VERSION: __version__})
    provider = TracerProvider(resource=resource)  # sampler from OTEL_TRACES_SAMPLER[_ARG]
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _exporter(choice: str) -> SpanExporter:
    if choice == "otlp":
        return _otlp_exporter()
    if choice == "jaeger":
        return jaeger_exporter()  # imports thrift only now, and only with the extra installed
    return ConsoleSpanExporter()


def _otlp_exporter() -> SpanExporter:
    # Imported here so processes with tracing off never load the protobuf/requests exporter stack.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout, compression from OTEL_EXPORTER_OTLP_*


def configure_tracing(service_name: str) -> TracerProvider | None:
    """Install the process-wide tracer provider from ``OTEL_*`` (once); None when tracing is off.

    Spans still buffered are flushed at interpreter exit by the SDK; call ``shutdown_tracing()`` to
    flush earlier (short CLI runs do).
    """
    global _provider
    if _provider is not None:
        return _provider
    provider = build_provider(service_name)
    if provider is not None:
        trace.set_tracer_provider(provider)
        _provider = provider
        from tenantpulse.otel.client import instrument_requests

        instrument_requests()  # outgoing calls (the sidecar's queries) become child spans
    return provider


def tracing_enabled() -> bool:
    return _provider is not None


def shutdown_tracing() -> None:
    """Flush buffered spans and stop the exporter thread."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME, __version__)


def set_attributes(**attributes: Any) -> None:
    """Set ``tenantpulse.<name>`` attributes on the current span (nothing happens when not recording)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes({f"tenantpulse.{k}": v for k, v in attributes.items() if v is not None})


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[trace.Span]:
    """A span around a unit of work (a sidecar cycle, a CLI run); exceptions mark it as failed."""
    attrs = {f"tenantpulse.{k}": v for k, v in attributes.items() if v is not None}
    with tracer().start_as_current_span(name, attributes=attrs) as current:
        yield current


@contextmanager
def traced_command(command: str, what: str | None = None) -> Iterator[trace.Span | None]:
    """Tracing for one ``tenantpulse`` run: configured from ``OTEL_*`` as service ``tenantpulse-<command>``.

    ``generate`` runs get one span around the whole command (servers trace their requests and
    cycles instead of one endless span). Buffered spans are flushed when the command returns.
    """
    owned = not tracing_enabled()  # an embedding process (a test) may have configured it already
    configure_tracing(f"tenantpulse-{command}")
    try:
        if command == "generate" and tracing_enabled():
            name = f"tenantpulse generate {what}" if what else "tenantpulse generate"
            with span(name, command=command, generate=what) as current:
                yield current
        else:
            yield None
    finally:
        if owned:
            shutdown_tracing()


def record_exit_code(current: trace.Span | None, code: int) -> int:
    """Mark a command span failed when the command returns a non-zero exit code; returns ``code``."""
    if current is not None and current.is_recording():
        current.set_attribute("tenantpulse.exit_code", code)
        if code:
            current.set_status(trace.Status(trace.StatusCode.ERROR, f"exit code {code}"))
    return code
