"""The exemplar for an observation made now: the current span's trace id, if a sampled span is active.

With tracing off the current span is the invalid span, so this is one context lookup and a None.
"""

from __future__ import annotations

from opentelemetry import trace

# Label names of exemplars and keys of log lines: Grafana's exemplar link and log search use them.
TRACE_ID_LABEL = "trace_id"
SPAN_ID_LABEL = "span_id"


def current_exemplar() -> dict[str, str] | None:
    ctx = trace.get_current_span().get_span_context()
    if not (ctx.is_valid and ctx.trace_flags.sampled):
        return None
    return {TRACE_ID_LABEL: format(ctx.trace_id, "032x"), SPAN_ID_LABEL: format(ctx.span_id, "016x")}
