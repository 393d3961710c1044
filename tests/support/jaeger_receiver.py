"""A loopback stand-in for an old Jaeger's two Thrift inputs, decoding with the exporter package's own classes.

- the agent: UDP on ``.agent_port``, one ``Agent.emitBatch`` message in compact Thrift per datagram;
- the collector: ``POST /api/traces`` at ``.collector_url``, one ``Batch`` in binary Thrift.

Spans come out as ``tests.support.otlp.ReceivedSpan`` (ids as lowercase hex), so the Jaeger tests
assert exactly what the OTLP tests assert. ``.batches`` counts what each transport received.
"""

from __future__ import annotations

import socketserver
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.Thrift import TMessageType
from thrift.transport import TTransport

from tenantpulse.otel.jaeger import restore_dropped_sdk_names
from tests.support.otlp import ReceivedSpan, SpanStore

restore_dropped_sdk_names()  # the package's __init__ runs first, and needs them on today's SDK
from opentelemetry.exporter.jaeger.thrift.gen.agent import Agent  # noqa: E402
from opentelemetry.exporter.jaeger.thrift.gen.jaeger import ttypes  # noqa: E402

_U64 = (1 << 64) - 1


def _tag_value(tag: ttypes.Tag) -> Any:
    return {
        ttypes.TagType.STRING: tag.vStr,
        ttypes.TagType.DOUBLE: tag.vDouble,
        ttypes.TagType.BOOL: tag.vBool,
        ttypes.TagType.LONG: tag.vLong,
        ttypes.TagType.BINARY: tag.vBinary,
    }[tag.vType]


def spans_of(batch: ttypes.Batch) -> list[ReceivedSpan]:
    """A Jaeger batch's spans: Thrift's signed 64-bit ids as unsigned hex, kind and status from their tags."""
    out = []
    for s in batch.spans or []:
        tags = {t.key: _tag_value(t) for t in s.tags or []}
        out.append(
            ReceivedSpan(
                service=batch.process.serviceName,
                scope=tags.get("otel.scope.name", ""),
                name=s.operationName,
                kind=tags.get("span.kind", ""),
                trace_id=format((s.traceIdHigh & _U64) << 64 | (s.traceIdLow & _U64), "032x"),
                span_id=format(s.spanId & _U64, "016x"),
                parent_span_id=format(s.parentSpanId & _U64, "016x") if s.parentSpanId else "",
                attributes=tags,
                status=str(tags.get("otel.status_code", "unset")).lower(),
            )
        )
    return out


def decode_agent_datagram(data: bytes) -> ttypes.Batch:
    protocol = TCompactProtocol.TCompactProtocol(TTransport.TMemoryBuffer(data))
    name, kind, _ = protocol.readMessageBegin()
    if (name, kind) != ("emitBatch", TMessageType.ONEWAY):
        raise ValueError(f"not an emitBatch message: {name!r} type {kind}")
    args = Agent.emitBatch_args()
    args.read(protocol)
    protocol.readMessageEnd()
    batch: ttypes.Batch = args.batch
    return batch


def decode_collector_body(body: bytes) -> ttypes.Batch:
    batch = ttypes.Batch()
    batch.read(TBinaryProtocol.TBinaryProtocol(TTransport.TMemoryBuffer(body)))
    return batch


class JaegerReceiver(SpanStore):
    """The agent's UDP port and the collector's HTTP endpoint on 127.0.0.1; spans pile up in ``.spans``."""

    what = "spans at the Jaeger receiver"

    def __init__(self) -> None:
        super().__init__()
        self.batches: Counter[str] = Counter()
        receiver = self

        class AgentHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                receiver._add("agent", decode_agent_datagram(self.request[0]))

        class CollectorHandler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/api/traces":
                    self.send_error(404)
                    return
                if self.headers.get("Content-Type") != "application/x-thrift":
                    self.send_error(415)
                    return
                receiver._add("collector", decode_collector_body(body))
                self.send_response(202)  # what Jaeger's collector answers
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        class AgentServer(socketserver.ThreadingUDPServer):
            max_packet_size = 65535  # a whole datagram, as the agent reads (socketserver's default is 8192)

        self.agent = AgentServer(("127.0.0.1", 0), AgentHandler)
        self.agent_port = self.agent.server_address[1]
        self.collector = ThreadingHTTPServer(("127.0.0.1", 0), CollectorHandler)
        self.collector_url = f"http://127.0.0.1:{self.collector.server_address[1]}/api/traces"
        self._threads = [
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            for server in (self.agent, self.collector)
        ]

    def _add(self, transport: str, batch: ttypes.Batch) -> None:
        spans = spans_of(batch)
        with self._lock:
            self.spans.extend(spans)
            self.batches[transport] += 1

    def env(self, transport: str) -> dict[str, str]:
        """The standard variables that send a process's spans here over ``agent`` or ``collector``."""
        if transport == "agent":
            return {
                "OTEL_EXPORTER_JAEGER_AGENT_HOST": "127.0.0.1",
                "OTEL_EXPORTER_JAEGER_AGENT_PORT": str(self.agent_port),
            }
        return {"OTEL_EXPORTER_JAEGER_ENDPOINT": self.collector_url}

    def __enter__(self) -> JaegerReceiver:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in (self.agent, self.collector):
            server.shutdown()
            server.server_close()
