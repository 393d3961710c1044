"""``OTEL_TRACES_EXPORTER=jaeger``: spans as Jaeger Thrift, for Jaeger older than 1.35 (no OTLP receiver).

Optional, from the ``jaeger`` extra (``opentelemetry-exporter-jaeger-thrift``, frozen at 1.21.0). Only
this module imports it, and only when that exporter is chosen, so no other process loads thrift. The
standard variables pick the transport: ``OTEL_EXPORTER_JAEGER_ENDPOINT`` (the collector's
``/api/traces``, binary Thrift over HTTP, basic auth from ``..._USER``/``..._PASSWORD``), else the agent
at ``OTEL_EXPORTER_JAEGER_AGENT_HOST``:``..._PORT`` (compact Thrift over UDP, default localhost:6831).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from urllib.parse import urlsplit

from opentelemetry.sdk.trace.export import SpanExporter

from tenantpulse.kernel.errors import UsageError

EXTRA = "jaeger"
MISSING_EXTRA = f"OTEL_TRACES_EXPORTER='jaeger' needs the {EXTRA!r} extra: pip install 'tenantpulse[{EXTRA}]'"

# The frozen exporter imports these names from the SDK, which dropped them in 1.40.0 (each constant
# is its own name); putting them back lets the last release run on today's SDK.
_DROPPED_SDK_NAMES = (
    "OTEL_EXPORTER_JAEGER_AGENT_HOST",
    "OTEL_EXPORTER_JAEGER_AGENT_PORT",
    "OTEL_EXPORTER_JAEGER_AGENT_SPLIT_OVERSIZED_BATCHES",
    "OTEL_EXPORTER_JAEGER_ENDPOINT",
    "OTEL_EXPORTER_JAEGER_PASSWORD",
    "OTEL_EXPORTER_JAEGER_TIMEOUT",
    "OTEL_EXPORTER_JAEGER_USER",
)


def check_jaeger_settings(environ: Mapping[str, str]) -> None:
    """Refuse values the exporter would crash on (a port or timeout that is no number) or misuse."""
    port = environ.get("OTEL_EXPORTER_JAEGER_AGENT_PORT", "").strip()
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise UsageError(f"OTEL_EXPORTER_JAEGER_AGENT_PORT={port!r} must be a port number (1-65535)")
    timeout = environ.get("OTEL_EXPORTER_JAEGER_TIMEOUT", "").strip()
    if timeout and not (timeout.isdigit() and int(timeout) > 0):
        raise UsageError(f"OTEL_EXPORTER_JAEGER_TIMEOUT={timeout!r} must be a whole number of seconds")
    endpoint = environ.get("OTEL_EXPORTER_JAEGER_ENDPOINT", "").strip()
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise UsageError(
                f"OTEL_EXPORTER_JAEGER_ENDPOINT={endpoint!r} must be the collector's URL, "
                "e.g. http://jaeger-collector:14268/api/traces"
            )


def restore_dropped_sdk_names() -> None:
    """Call before importing ``opentelemetry.exporter.jaeger.thrift`` (or its ``gen`` Thrift classes)."""
    from opentelemetry.sdk import environment_variables

    for name in _DROPPED_SDK_NAMES:
        if not hasattr(environment_variables, name):
            setattr(environment_variables, name, name)


def jaeger_exporter() -> SpanExporter:
    """The Thrift exporter, configured by the SDK's ``OTEL_EXPORTER_JAEGER_*``; a usage error without the extra."""
    restore_dropped_sdk_names()
    try:
        from opentelemetry.exporter.jaeger.thrift import JaegerExporter
    except ModuleNotFoundError as exc:  # the extra, thrift or Deprecated is not installed
        raise UsageError(MISSING_EXTRA) from exc
    with warnings.catch_warnings():  # chosen knowingly: its "use OTLP" warning says nothing new here
        warnings.simplefilter("ignore", DeprecationWarning)
        # Split always: unsplit, the package drops (with one log line) any batch over a 65,000-byte
        # datagram, which a busy exporter's 512-span batches are. Its own env switch is read as
        # "any value is true", so setting it to false could not turn splitting off anyway.
        exporter: SpanExporter = JaegerExporter(udp_split_oversized_batches=True)
    return exporter
