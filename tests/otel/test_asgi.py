"""instrument_app: untouched when tracing is off; when on, ingest is traced and scrapes/probes are not."""

from __future__ import annotations

import pytest
import yaml
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tenantpulse.exporters.app import create_app
from tenantpulse.exporters.settings import ExporterSettings
from tenantpulse.otel.asgi import instrument_app
from tenantpulse.otel.tracing import tracing_enabled

KEY = "asgi-test-key"


@pytest.fixture()
def settings(tmp_path, monkeypatch) -> ExporterSettings:
    for var in ("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS"):
        monkeypatch.delenv(var, raising=False)
    keys = tmp_path / "keys.yaml"
    keys.write_text(yaml.safe_dump({"keys": [{"key": KEY, "tenant": "acme", "scopes": ["write", "read"]}]}))
    return ExporterSettings(api_keys_file=keys)


def test_tracing_off_leaves_the_app_uninstrumented(settings) -> None:
    assert not tracing_enabled()  # no OTEL_* configuration in the test process
    app = create_app(settings)
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)


def test_ingest_is_traced_but_scrapes_and_probes_are_not(settings) -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    app = instrument_app(create_app(settings), tracer_provider=provider)
    with TestClient(app) as client:
        event = {"tenant_id": "acme", "event_type": "song_play", "metadata": {"duration_ms": 5}}
        r = client.post("/analytics/metrics", json=event, headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 200, r.text
        for path in ("/metrics", "/healthz", "/readyz", "/metrics?tenant=acme"):
            assert client.get(path).status_code == 200
        assert (
            client.get("/analytics/metrics/acme", headers={"Authorization": f"Bearer {KEY}"}).status_code
            == 200
        )
    names = sorted(s.name for s in spans.get_finished_spans())
    assert names == ["GET /analytics/metrics/{tenant_id}", "POST /analytics/metrics"]
    (ingest,) = [s for s in spans.get_finished_spans() if s.name == "POST /analytics/metrics"]
    assert ingest.attributes["tenantpulse.tenant"] == "acme"
    assert ingest.attributes["tenantpulse.batch_size"] == 1
    assert ingest.attributes["tenantpulse.result"] == "accepted"


def test_excluded_urls_env_replaces_the_default(settings, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "/analytics/metrics")
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    app = instrument_app(create_app(settings), tracer_provider=provider)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        event = {"tenant_id": "acme", "event_type": "song_play"}
        assert client.post(
            "/analytics/metrics", json=event, headers={"Authorization": f"Bearer {KEY}"}
        ).is_success
    assert [s.name for s in spans.get_finished_spans()] == ["GET /healthz"]
