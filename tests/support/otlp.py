"""A loopback OTLP/HTTP trace receiver that decodes the real ``ExportTraceServiceRequest`` protobuf.

It stands where Jaeger's :4318 would: tests point ``OTEL_EXPORTER_OTLP_ENDPOINT`` at ``.url`` and
read back what the SDK (or Prometheus's own tracer) actually put on the wire.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from tests.support.ports import wait_until


@dataclass(frozen=True)
class ReceivedSpan:
    """One decoded span, ids as lowercase hex (as in ``traceparent`` and Jaeger's UI)."""

    service: str
    scope: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    status: str


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


def decode(body: bytes) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for rs in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                spans.append(
                    ReceivedSpan(
                        service=resource.get("service.name", ""),
                        scope=ss.scope.name,
                        name=s.name,
                        kind=PbSpan.SpanKind.Name(s.kind).removeprefix("SPAN_KIND_").lower(),
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex(),
                        attributes={kv.key: _value(kv.value) for kv in s.attributes},
                        status=s.status.StatusCode.Name(s.status.code).removeprefix("STATUS_CODE_").lower(),
                    )
                )
    return spans


class SpanStore:
    """The spans a loopback receiver decoded (OTLP here, Jaeger Thrift in ``jaeger_receiver``), and the
    waiting the tests do on them."""

    what = "spans at the receiver"

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()

    def find(self, predicate: Callable[[ReceivedSpan], bool]) -> list[ReceivedSpan]:
        with self._lock:
            return [s for s in self.spans if predicate(s)]

    def wait_for(
        self, predicate: Callable[[ReceivedSpan], bool], count: int = 1, timeout: float = 20.0, what: str = ""
    ) -> list[ReceivedSpan]:
        """Wait until at least ``count`` received spans match; returns all that match."""
        found = wait_until(
            lambda: (m := self.find(predicate)) and len(m) >= count and m,
            timeout=timeout,
            what=what or self.what,
        )
        return found  # type: ignore[return-value]


class OtlpReceiver(SpanStore):
    """``POST /v1/traces`` (protobuf, optionally gzip/deflate) on 127.0.0.1; spans pile up in ``.spans``."""

    what = "spans at the OTLP receiver"

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
                    self.send_error(404 if self.path != "/v1/traces" else 415)
                    return
                spans = decode(body)
                with receiver._lock:
                    receiver.spans.extend(spans)
                    receiver.requests += 1
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
