"""configure_tracing's reading of the OTEL_* environment, checked on the wire at a loopback OTLP receiver."""

from __future__ import annotations

import pytest
from opentelemetry.trace import SpanKind

from tenantpulse.kernel.errors import UsageError
from tenantpulse.otel.tracing import EXPORTERS, build_provider, check_sampler, exporter_choice
from tests.support.otlp import OtlpReceiver

OTEL_VARS = (
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_TRACES_EXPORTER",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_RESOURCE_ATTRIBUTES",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in OTEL_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture()
def receiver():
    with OtlpReceiver() as r:
        yield r


def test_base_endpoint_exports_parent_and_child_with_service_name(receiver, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)  # the SDK appends /v1/traces
    provider = build_provider("tenantpulse-test")
    assert provider is not None
    tracer = provider.get_tracer("t")
    with (
        tracer.start_as_current_span("outer") as outer,
        tracer.start_as_current_span("inner", kind=SpanKind.CLIENT),
    ):
        pass
    provider.shutdown()  # flushes the batch processor
    spans = {s.name: s for s in receiver.spans}
    assert set(spans) == {"outer", "inner"}
    assert spans["inner"].parent_span_id == spans["outer"].span_id
    assert (
        spans["inner"].trace_id
        == spans["outer"].trace_id
        == format(outer.get_span_context().trace_id, "032x")
    )
    assert spans["inner"].kind == "client"
    assert {s.service for s in spans.values()} == {"tenantpulse-test"}


def test_service_name_and_resource_attributes_from_env(receiver, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{receiver.url}/v1/traces")  # used as given
    monkeypatch.setenv("OTEL_SERVICE_NAME", "pulse-eu")
    provider = build_provider("tenantpulse-exporter")
    assert provider is not None
    with provider.get_tracer("t").start_as_current_span("work"):
        pass
    provider.shutdown()
    assert [(s.name, s.service) for s in receiver.spans] == [("work", "pulse-eu")]


def test_ratio_sampler_zero_exports_nothing(receiver, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    provider = build_provider("tenantpulse-test")
    assert provider is not None
    with provider.get_tracer("t").start_as_current_span("dropped") as span:
        assert not span.get_span_context().trace_flags.sampled
    provider.shutdown()
    assert receiver.spans == [] and receiver.requests == 0


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "none"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://jaeger:4318/v1/traces"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "None"}, "none"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318", "OTEL_SDK_DISABLED": "true"}, "none"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://j:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            "otlp",
        ),
    ],
)
def test_exporter_choice(env: dict[str, str], expected: str) -> None:
    assert exporter_choice(env) == expected


def test_tracing_off_builds_no_provider() -> None:
    assert build_provider("tenantpulse-test") is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER='zipkin' is not supported"),
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER='sometimes' is not supported"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"}, "between 0 and 1"),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
            "between 0 and 1",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL='grpc' is not supported",
        ),
    ],
)
def test_bad_settings_are_usage_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_sampler(env)
        exporter_choice(env)


def test_supported_exporters_are_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "tracing.md").read_text()
    for name in EXPORTERS:
        assert f"`{name}`" in doc
