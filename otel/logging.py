"""structlog JSON logs with correlation ids bound from context; stdlib logging goes the same way.

Request handlers bind ``request_id`` / ``tenant`` with ``structlog.contextvars.bind_contextvars``;
every line logged inside that context carries them, and ``trace_id`` / ``span_id`` of the current
span when one is recording, so a log line in Loki or on stderr leads to its trace in Jaeger.
"""

from __future__ import annotations

import logging
import sys

import structlog
from opentelemetry import trace
from structlog.types import EventDict, WrappedLogger

from tenantpulse.kernel.errors import UsageError
from tenantpulse.otel.exemplars import SPAN_ID_LABEL, TRACE_ID_LABEL

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("json", "console")


def add_trace_ids(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Add the current span's ``trace_id`` / ``span_id`` (W3C hex, as Jaeger shows them)."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault(TRACE_ID_LABEL, format(ctx.trace_id, "032x"))
        event_dict.setdefault(SPAN_ID_LABEL, format(ctx.span_id, "016x"))
    return event_dict


SHARED_PROCESSORS: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    add_trace_ids,
    structlog.stdlib.add_logger_name,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]

_JSON_TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Route structlog and the standard library through one processor chain to stderr."""
    if level.lower() not in LEVELS:
        raise UsageError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise UsageError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    # JSON lines carry a structured traceback without local variables (they may hold keys or user
    # ids); the console renderer prints exceptions itself.
    renderers: list[structlog.types.Processor] = (
        [_JSON_TRACEBACKS, structlog.processors.JSONRenderer()]
        if fmt == "json"
        else [structlog.dev.ConsoleRenderer(colors=False)]
    )
    structlog.configure(
        processors=[*SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=SHARED_PROCESSORS,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # An in-process uvicorn server configured with its own defaults leaves these with handlers of
        # their own and propagate off: their lines would bypass the chain above.
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
