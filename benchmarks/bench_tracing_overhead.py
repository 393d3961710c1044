"""Cost of tracing on the ingest hot path: the same exporter app, in process, under five setups.

Each request is ``POST /analytics/metrics`` with a batch of 10 events, sent through httpx's ASGI
transport (no sockets, so the app's own cost is what is compared). Setups:

- baseline: ``create_app`` with ``instrument_app`` and the handler's ``set_attributes`` bypassed
  (the app as it would be without any tracing code);
- off: ``create_app`` as shipped with no ``OTEL_*`` settings (tracing off);
- noop-instrumented: the FastAPI instrumentation installed over the API's no-op provider, i.e. what
  "off" would cost if the app were always instrumented (why ``instrument_app`` skips it);
- on 10%: SDK with ``parentbased_traceidratio`` 0.1;
- on 100%: SDK sampling every request.

"On" setups export through a batch processor to an exporter that encodes the spans to OTLP protobuf
and discards the bytes (the work the real exporter does before the network). Rounds are interleaved
and the median round is reported; ratios are requests per CPU second against the baseline measured in
the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from unittest import mock

import httpx
import yaml
from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import NoOpTracerProvider

from tenantpulse.exporters import app as exporter_app
from tenantpulse.exporters.app import create_app
from tenantpulse.exporters.settings import ExporterSettings
from tenantpulse.otel.asgi import instrument_app
from tenantpulse.otel.logging import configure_logging

KEY = "bench-key"
EVENTS_PER_REQUEST = 10
REQUESTS_PER_ROUND = 400
ROUNDS = 11
BASELINE = "baseline (uninstrumented)"
NULL = contextlib.nullcontext()


def _no_attributes(**_: object) -> None:
    pass


class EncodeAndDiscard(SpanExporter):
    """Does the OTLP encoding a real export does, then drops the bytes."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encode_spans(spans).SerializeToString()
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _settings(workdir: Path) -> ExporterSettings:
    keys = workdir / "keys.yaml"
    keys.write_text(yaml.safe_dump({"keys": [{"key": KEY, "tenant": "*", "scopes": ["write", "read"]}]}))
    return ExporterSettings(api_keys_file=keys, rate_limit=1e12, rate_burst=1e12)


def _build(settings: ExporterSettings, provider: object | None, bypass: bool) -> FastAPI:
    if bypass:
        with mock.patch.object(exporter_app, "instrument_app", lambda app: app):
            return create_app(settings)
    app = create_app(settings)  # tracing is not configured in this process: this is the "off" app
    if provider is not None:
        instrument_app(app, tracer_provider=provider)  # type: ignore[arg-type]
    return app


def _provider(ratio: float) -> tuple[TracerProvider, EncodeAndDiscard]:
    sink = EncodeAndDiscard()
    sampler = ALWAYS_ON if ratio >= 1 else ParentBased(TraceIdRatioBased(ratio))
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(sink))
    return provider, sink


async def _round(app: FastAPI, body: bytes) -> float:
    """Requests per CPU second of this process for one round.

    CPU time, not wall time: the machine is shared, and CPU time of the process still counts the
    span processor's export thread, which is part of what tracing costs.
    """
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        started = time.process_time()
        for _ in range(REQUESTS_PER_ROUND):
            r = await client.post("/analytics/metrics", content=body, headers=headers)
            if r.status_code != 200:
                raise RuntimeError(f"ingest answered {r.status_code}: {r.text}")
        return REQUESTS_PER_ROUND / (time.process_time() - started)


def main() -> None:
    # Access logs are rendered as in production (JSON, with trace ids when tracing is on) but discarded.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        configure_logging("info", "json")
        _run()


def _run() -> None:
    events = [
        {
            "tenant_id": f"t{i % 3}",
            "user_id": f"u{i}",
            "event_type": "song_play",
            "metadata": {"duration_ms": 100 + i},
        }
        for i in range(EVENTS_PER_REQUEST)
    ]
    body = json.dumps({"events": events}).encode()
    with tempfile.TemporaryDirectory() as tmp:
        settings = _settings(Path(tmp))
        on10, sink10 = _provider(0.1)
        on100, sink100 = _provider(1.0)
        setups: dict[str, Callable[[], FastAPI]] = {
            BASELINE: lambda: _build(settings, None, bypass=True),
            "tracing off (as shipped)": lambda: _build(settings, None, bypass=False),
            "instrumented, no-op provider": lambda: _build(settings, NoOpTracerProvider(), bypass=False),
            "tracing on, 10% sampled": lambda: _build(settings, on10, bypass=False),
            "tracing on, 100% sampled": lambda: _build(settings, on100, bypass=False),
        }
        apps = {name: build() for name, build in setups.items()}
        for app in apps.values():  # warm-up: imports, route compilation, first series
            asyncio.run(_round(app, body))
        rates: dict[str, list[float]] = {name: [] for name in apps}
        order = list(apps)
        for r in range(ROUNDS):
            for name in order[r % len(order) :] + order[: r % len(order)]:  # rotate: no setup always first
                # The handler's ``set_attributes`` calls are part of what "tracing off" costs, so the
                # baseline runs without them (the handler looks the name up at call time).
                untraced = name == BASELINE
                with mock.patch.object(exporter_app, "set_attributes", _no_attributes) if untraced else NULL:
                    rates[name].append(asyncio.run(_round(apps[name], body)))
        on10.shutdown()
        on100.shutdown()
    base = statistics.median(rates[BASELINE])
    print(
        f"ingest, {EVENTS_PER_REQUEST} events/request, median of {ROUNDS} rounds x {REQUESTS_PER_ROUND} requests"
    )
    for name, values in rates.items():
        rate = statistics.median(values)
        print(
            f"  {name:30s} {rate:8.0f} req/CPU-s  {1e6 / rate:7.1f} us/req  ratio to baseline {rate / base:5.3f}"
        )
    print(f"  spans exported (encoded to OTLP): 10%: {sink10.spans}, 100%: {sink100.spans}")


if __name__ == "__main__":
    main()
