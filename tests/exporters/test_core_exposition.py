"""The collector's exposition: promtool accepts it, prometheus_client's parsers read back what was ingested,
escaping, OpenMetrics specifics (EOF, UNIT, exemplars) and per-tenant rendering."""

from __future__ import annotations

import subprocess
import time

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tenantpulse.conventions import catalog as c
from tenantpulse.exporters.collector import CollectorConfig, MetricsCollector
from tenantpulse.exporters.events import AppEvent, BusinessFigures
from tenantpulse.exporters.exposition import ProcessMetrics, with_process_metrics
from tests.support.prometheus import require

TRACE = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}


@pytest.fixture
def collector() -> MetricsCollector:
    col = MetricsCollector(CollectorConfig(pseudonym_keys={"v1": b"k"}, clock=lambda: 1_700_000_000.0))
    events = [
        AppEvent("t1", "u1", "song_play", {"duration_ms": 120}),
        AppEvent("t1", "u2", "song_play", {"duration_ms": 2600}),
        AppEvent("t1", "u1", "error", {}),
        AppEvent("acme.eu", "u9", "song_play", {"duration_seconds": 0.004}),
    ]
    col.ingest(events, [BusinessFigures("t1", revenue=12.5, active_users=40, conversion_rate=0.25)])
    col.ingest([], [BusinessFigures("t1", revenue=0.5)])
    col.register_kpi("t1", "queue_depth", labels=["region"])
    col.set_kpi("t1", "queue_depth", 7.5, {"region": 'eu "west"\\1'})
    col.register_kpi("t1", "signups", type="counter")
    col.inc_kpi("t1", "signups", 3)
    col.observe_request("t1", 0.003, TRACE)
    col.count_rejected("t1", "bad_value")
    return col


def samples(families) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}


def test_promtool_check_metrics_has_no_complaint(collector: MetricsCollector) -> None:
    promtool = require("promtool")
    body = collector.render()
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == b"" and result.stderr.strip() == b""


def test_text_parses_back_to_ingested_values(collector: MetricsCollector) -> None:
    got = samples(parse_text(collector.render().decode()))
    assert got[(c.EVENTS.name, frozenset({"tenant": "t1", "event_type": "song_play"}.items()))] == 2
    assert got[(c.EVENTS.name, frozenset({"tenant": "t1", "event_type": "error"}.items()))] == 1
    assert got[(c.EVENTS.name, frozenset({"tenant": "acme.eu", "event_type": "song_play"}.items()))] == 1
    assert got[(c.REVENUE.name, frozenset({"tenant": "t1"}.items()))] == 13.0
    assert got[(c.ACTIVE_USERS.name, frozenset({"tenant": "t1"}.items()))] == 40
    assert got[(c.CONVERSION.name, frozenset({"tenant": "t1"}.items()))] == 0.25
    kpi_labels = {"tenant": "t1", "kpi": "queue_depth", "region": 'eu "west"\\1'}
    assert got[(c.CUSTOM_KPI.name, frozenset(kpi_labels.items()))] == 7.5
    assert got[(c.CUSTOM_KPI_COUNTER.name, frozenset({"tenant": "t1", "kpi": "signups"}.items()))] == 3
    assert got[(c.UNIQUE_USERS.name, frozenset({"tenant": "t1", "window": "1h"}.items()))] == 2
    assert got[(c.INGEST_REJECTED.name, frozenset({"tenant": "t1", "reason": "bad_value"}.items()))] == 1
    assert (
        got[(c.TENANT_SERIES.name, frozenset({"tenant": "t1"}.items()))] == collector.snapshot("t1")["series"]
    )


def test_histogram_is_cumulative_with_sum_and_count(collector: MetricsCollector) -> None:
    got = samples(parse_text(collector.render().decode()))
    labels = {"tenant": "t1", "event_type": "song_play"}

    def bucket(le: str) -> float:
        return got[(c.EVENT_DURATION.sample("bucket"), frozenset({**labels, "le": le}.items()))]

    assert bucket("0.1") == 0 and bucket("0.25") == 1 and bucket("2.5") == 1 and bucket("5.0") == 2
    assert bucket("+Inf") == 2
    assert got[(c.EVENT_DURATION.sample("count"), frozenset(labels.items()))] == 2
    assert got[(c.EVENT_DURATION.sample("sum"), frozenset(labels.items()))] == pytest.approx(2.72)


def test_help_and_type_once_per_family(collector: MetricsCollector) -> None:
    text = collector.render().decode()
    for metric in (c.EVENTS, c.EVENT_DURATION, c.CUSTOM_KPI):
        assert text.count(f"# TYPE {metric.name} ") == 1
        assert text.count(f"# HELP {metric.name} ") == 1


def test_openmetrics_parses_with_eof_units_and_exemplar(collector: MetricsCollector) -> None:
    text = collector.render(openmetrics=True).decode()
    assert text.endswith("# EOF\n")
    assert f"# TYPE {c.EVENTS.family} counter\n" in text
    assert f"# UNIT {c.EVENT_DURATION.name} seconds\n" in text
    families = {f.name: f for f in parse_openmetrics(text)}
    assert families[c.EVENTS.family].type == "counter"
    got = samples(families.values())
    assert got[(c.EVENTS.name, frozenset({"tenant": "t1", "event_type": "song_play"}.items()))] == 2
    request_buckets = [s for s in families[c.INGEST_REQUEST_DURATION.name].samples if s.exemplar]
    assert len(request_buckets) == 1
    sample = request_buckets[0]
    assert sample.labels["le"] == "0.005"
    assert sample.exemplar.labels == TRACE
    assert sample.exemplar.value == 0.003
    assert (sample.exemplar.timestamp.sec, sample.exemplar.timestamp.nsec) == (1_700_000_000, 0)


def test_event_durations_carry_the_current_span_as_exemplar() -> None:
    col = MetricsCollector()
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("ingest") as span:
        col.ingest([AppEvent("t1", None, "song_play", {"duration_seconds": 0.07})], [])
        trace_id = format(span.get_span_context().trace_id, "032x")
    families = {f.name: f for f in parse_openmetrics(col.render(openmetrics=True).decode())}
    with_exemplar = [s for s in families[c.EVENT_DURATION.name].samples if s.exemplar]
    assert [(s.labels["le"], s.exemplar.labels["trace_id"], s.exemplar.value) for s in with_exemplar] == [
        ("0.1", trace_id, 0.07)
    ]
    assert trace.get_current_span().get_span_context().is_valid is False


def test_text_format_has_no_exemplars_or_eof(collector: MetricsCollector) -> None:
    text = collector.render().decode()
    assert " # {" not in text and "# EOF" not in text


def test_one_tenant_render_holds_only_that_tenant(collector: MetricsCollector) -> None:
    families = list(parse_text(collector.render("acme.eu").decode()))
    tenants = {s.labels.get("tenant") for f in families for s in f.samples}
    assert tenants == {"acme.eu"}
    assert collector.render("nobody") == b""
    assert collector.render("nobody", openmetrics=True) == b"# EOF\n"


def test_render_follows_new_series_and_values(collector: MetricsCollector) -> None:
    before = collector.render()
    collector.ingest([AppEvent("t1", None, "song_play"), AppEvent("t1", None, "seek")], [])
    got = samples(parse_text(collector.render().decode()))
    assert got[(c.EVENTS.name, frozenset({"tenant": "t1", "event_type": "song_play"}.items()))] == 3
    assert got[(c.EVENTS.name, frozenset({"tenant": "t1", "event_type": "seek"}.items()))] == 1
    assert b"seek" not in before


def test_non_integer_values_render_as_floats() -> None:
    col = MetricsCollector()
    col.ingest([], [BusinessFigures("t1", revenue=2)])
    col.ingest([], [BusinessFigures("t1", revenue=0.25)])
    col.ingest([], [BusinessFigures("t1", revenue=1e15)] * 10)  # a sum past 2**53, each value within bounds
    got = samples(parse_text(col.render().decode()))
    assert got[(c.REVENUE.name, frozenset({"tenant": "t1"}.items()))] == pytest.approx(1e16 + 2.25)


def test_system_metrics_are_host_gauges() -> None:
    import asyncio

    col = MetricsCollector()
    asyncio.run(col.collect_system_metrics())
    got = samples(parse_text(col.render().decode()))
    assert 0.0 <= got[(c.SYSTEM_CPU.name, frozenset())] <= 1.0
    assert got[(c.SYSTEM_MEMORY.name, frozenset())] > 1e6
    assert c.SYSTEM_CPU.name.encode() not in col.render("t1")


def test_label_value_escaping() -> None:
    from tenantpulse.conventions.exposition import escape_label_value

    raw = 'a\\b"c\nd'
    assert escape_label_value(raw) == 'a\\\\b\\"c\\nd'
    line = f'x{{v="{escape_label_value(raw)}"}} 1\n'
    assert next(iter(parse_text(line))).samples[0].labels["v"] == raw


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20),
        min_size=1,
        max_size=5,
        unique=True,
    ),
    amounts=st.lists(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False), min_size=5, max_size=5),
)
def test_any_printable_label_value_round_trips_through_both_parsers(
    values: list[str], amounts: list[float]
) -> None:
    col = MetricsCollector()
    col.register_kpi("t1", "k", labels=("v",))
    for value, amount in zip(values, amounts, strict=False):
        col.set_kpi("t1", "k", amount, {"v": value})
    expected = dict(zip(values, amounts, strict=False))
    for parse, openmetrics in ((parse_text, False), (parse_openmetrics, True)):
        families = parse(col.render(openmetrics=openmetrics).decode())
        got = {s.labels["v"]: s.value for f in families for s in f.samples if s.name == c.CUSTOM_KPI.name}
        assert got == expected


def test_same_samples_as_prometheus_client_for_the_same_input() -> None:
    """The fast path against the reference implementation: identical samples, label sets and values."""
    registry = CollectorRegistry()
    events = Counter(c.EVENTS.family, c.EVENTS.help, c.EVENTS.labels, registry=registry)
    durations = Histogram(
        c.EVENT_DURATION.name, c.EVENT_DURATION.help, c.EVENT_DURATION.labels,
        buckets=c.EVENT_DURATION.buckets, registry=registry,
    )  # fmt: skip
    revenue = Counter(c.REVENUE.family, c.REVENUE.help, c.REVENUE.labels, registry=registry)
    col = MetricsCollector()
    for i in range(12):
        tenant = f"tenant-{i}"
        batch = []
        for j in range(i % 5 + 1):
            event_type = f"type_{j}"
            for k in range(j + 2):
                seconds = ((i * 7 + j * 3 + k) % 40) / 7
                batch.append(
                    AppEvent(tenant, None, event_type, {"duration_seconds": seconds} if k % 2 else {})
                )
                events.labels(tenant, event_type).inc()
                if k % 2:
                    durations.labels(tenant, event_type).observe(seconds)
        col.ingest(batch, [BusinessFigures(tenant, revenue=i * 1.25)])
        revenue.labels(tenant).inc(i * 1.25)

    def parsed(text: str) -> dict[tuple[str, frozenset], float]:
        got = samples(parse_text(text))
        return {k: v for k, v in got.items() if not k[0].endswith("_created")}

    reference = parsed(generate_latest(registry).decode())
    ours = {k: v for k, v in parsed(col.render().decode()).items() if k[0] != c.TENANT_SERIES.name}
    assert ours.keys() == reference.keys()
    assert ours == pytest.approx(reference)


PROCESS_FAMILIES = {
    "process_cpu_seconds",  # the counter's family name in OpenMetrics; sample process_cpu_seconds_total
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
}


def test_process_metrics_join_both_formats(collector: MetricsCollector) -> None:
    """Appended to the text exposition; inserted before OpenMetrics' ``# EOF``; both parse, promtool agrees."""
    text = with_process_metrics(collector.render()).decode()
    families = {f.name: f for f in parse_text(text)}
    assert {f.removesuffix("_total") for f in families} >= PROCESS_FAMILIES
    assert families["process_resident_memory_bytes"].samples[0].value > 0
    start = families["process_start_time_seconds"].samples[0].value
    assert psutil.Process().create_time() == pytest.approx(start, abs=1.0)
    om = with_process_metrics(collector.render(openmetrics=True), openmetrics=True).decode()
    assert om.endswith("\n# EOF\n") and om.count("# EOF") == 1
    families = {f.name: f for f in parse_openmetrics(om)}  # strict: anything after # EOF is an error
    assert set(families) >= PROCESS_FAMILIES | {c.EVENTS.family}
    assert families["process_cpu_seconds"].type == "counter"
    promtool = require("promtool")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), result


def test_process_metrics_are_read_at_most_once_per_max_age() -> None:
    """A flood of scrapes must not multiply the /proc reads."""
    now = [100.0]
    process = ProcessMetrics(max_age=1.0, clock=lambda: now[0])

    def cpu(body: bytes) -> float:
        return next(
            s.value for f in parse_text(body.decode()) for s in f.samples if s.name.startswith("process_cpu")
        )

    first = process.render(False)
    spin = time.process_time() + 0.3
    while time.process_time() < spin:  # spend CPU time the next reading would show
        pass
    now[0] += 0.9
    assert process.render(False) is first
    now[0] += 0.2
    assert cpu(process.render(False)) >= cpu(first) + 0.2
