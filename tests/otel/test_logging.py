"""Log lines carry the current span's trace/span ids and the bound request id / tenant, for structlog and stdlib."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from tenantpulse.kernel.errors import UsageError
from tenantpulse.otel.logging import configure_logging


@pytest.fixture()
def lines(capsys):
    """Read back JSON lines; each test configures logging itself (the handler binds the test's stderr)."""
    structlog.contextvars.clear_contextvars()
    yield lambda: [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    structlog.contextvars.clear_contextvars()


def test_structlog_and_stdlib_lines_carry_trace_and_request_ids(lines) -> None:
    configure_logging("info", "json")
    tracer = TracerProvider().get_tracer("t")
    structlog.contextvars.bind_contextvars(request_id="req-1", tenant="acme")
    with tracer.start_as_current_span("ingest") as span:
        structlog.get_logger("tenantpulse.test").info("accepted", events=3)
        logging.getLogger("uvicorn.error").warning("slow client %s", "10.0.0.1")
    ctx = span.get_span_context()
    out = lines()
    assert [line["event"] for line in out] == ["accepted", "slow client 10.0.0.1"]
    for line in out:
        assert line["trace_id"] == format(ctx.trace_id, "032x")
        assert line["span_id"] == format(ctx.span_id, "016x")
        assert (line["request_id"], line["tenant"]) == ("req-1", "acme")
    assert out[0]["events"] == 3 and out[1]["level"] == "warning" and out[1]["logger"] == "uvicorn.error"


def test_no_span_means_no_trace_ids(lines) -> None:
    configure_logging("info", "json")
    structlog.get_logger().info("idle")
    (line,) = lines()
    assert "trace_id" not in line and "span_id" not in line


def test_level_filters_and_tracebacks_have_no_locals(lines) -> None:
    configure_logging("warning", "json")
    secret = "key-that-must-not-leak"  # noqa: F841 - a local the traceback must not print
    structlog.get_logger().info("dropped")
    try:
        raise ValueError("bad input")
    except ValueError:
        logging.getLogger("x").exception("failed")
    (line,) = lines()
    assert line["event"] == "failed" and line["exception"][0]["exc_type"] == "ValueError"
    assert "key-that-must-not-leak" not in json.dumps(line)


@pytest.mark.parametrize(("level", "fmt"), [("verbose", "json"), ("info", "xml")])
def test_bad_level_or_format_is_a_usage_error(level: str, fmt: str) -> None:
    with pytest.raises(UsageError):
        configure_logging(level, fmt)
