"""Batch ingest: validation names the field, a refused batch applies nothing, caps, allowlist, seed API."""

from __future__ import annotations

import asyncio
import math
import threading

import pytest

from tenantpulse.exporters.collector import CollectorConfig, MetricsCollector
from tenantpulse.exporters.events import AppEvent, BusinessFigures, IngestError


def make(**overrides) -> MetricsCollector:
    cfg = dict(
        pseudonym_keys={"v1": b"secret"},
        pseudonym_key_current="v1",
        max_series_per_tenant=60,
        max_event_types_per_tenant=5,
        metadata_allowlist={"song_play": {"duration_ms", "track_genre"}, "*": {"duration_seconds"}},
    )
    cfg.update(overrides)
    return MetricsCollector(CollectorConfig(**cfg))


GOOD = AppEvent("t1", "u1", "song_play", {"duration_ms": 200})

BAD_EVENTS = [
    (AppEvent("bad tenant", "u", "x"), "events[1].tenant_id"),
    (AppEvent("-t", "u", "x"), "events[1].tenant_id"),
    (AppEvent("t1\n", "u", "x"), "events[1].tenant_id"),
    (AppEvent("t" * 64, "u", "x"), "events[1].tenant_id"),
    (AppEvent("t1", "u", 'x"}'), "events[1].event_type"),
    (AppEvent("t1", "u", "e" * 65), "events[1].event_type"),
    (AppEvent("t1", "u", ""), "events[1].event_type"),
    (AppEvent("t1", "u", "x\n"), "events[1].event_type"),
    (AppEvent("t1", "u", ["x"]), "events[1].event_type"),  # type: ignore[arg-type]
    (AppEvent(["t1"], "u", "x"), "events[1].tenant_id"),  # type: ignore[arg-type]
    (AppEvent("t1", 42, "x"), "events[1].user_id"),  # type: ignore[arg-type]
    (AppEvent("t1", "", "x"), "events[1].user_id"),
    (AppEvent("t1", "u" * 257, "x"), "events[1].user_id"),
    (AppEvent("t1", "u", "song_play", {"duration_ms": -1}), "events[1].metadata.duration_ms"),
    (AppEvent("t1", "u", "song_play", {"duration_ms": math.nan}), "events[1].metadata.duration_ms"),
    (AppEvent("t1", "u", "song_play", {"duration_ms": math.inf}), "events[1].metadata.duration_ms"),
    (AppEvent("t1", "u", "song_play", {"duration_ms": "12"}), "events[1].metadata.duration_ms"),
    (AppEvent("t1", "u", "song_play", {"duration_ms": True}), "events[1].metadata.duration_ms"),
    (AppEvent("t1", "u", "other", {"duration_seconds": -0.1}), "events[1].metadata.duration_seconds"),
    (AppEvent("t1", "u", "x", ["not", "a", "dict"]), "events[1].metadata"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("bad", "field"), BAD_EVENTS, ids=[f for _, f in BAD_EVENTS])
def test_bad_event_names_field_and_applies_nothing(bad: AppEvent, field: str) -> None:
    col = make()
    with pytest.raises(IngestError) as err:
        col.ingest([GOOD, bad, GOOD], [BusinessFigures("t1", revenue=5)])
    assert err.value.field == field
    assert err.value.status == 422
    assert err.value.to_json()["field"] == field
    assert col.tenants() == []
    assert col.render() == b""


BAD_BUSINESS = [
    (BusinessFigures("t1", revenue=-1), "business[1].revenue"),
    (BusinessFigures("t1", revenue=math.inf), "business[1].revenue"),
    (BusinessFigures("t1", revenue="5"), "business[1].revenue"),  # type: ignore[arg-type]
    (BusinessFigures("t1", active_users=-3), "business[1].active_users"),
    (BusinessFigures("t1", conversion_rate=1.5), "business[1].conversion_rate"),
    (BusinessFigures("t1", conversion_rate=-0.1), "business[1].conversion_rate"),
    (BusinessFigures("t 1", revenue=1), "business[1].tenant_id"),
]


@pytest.mark.parametrize(("bad", "field"), BAD_BUSINESS, ids=[f for _, f in BAD_BUSINESS])
def test_bad_business_names_field_and_applies_nothing(bad: BusinessFigures, field: str) -> None:
    col = make()
    col.ingest([GOOD], [])
    before = col.snapshot("t1")
    with pytest.raises(IngestError) as err:
        col.ingest([GOOD], [BusinessFigures("t1", revenue=1, active_users=2), bad])
    assert err.value.field == field
    assert col.snapshot("t1") == before


def test_good_batch_applies_everything() -> None:
    col = make()
    n = col.ingest(
        [GOOD, GOOD, AppEvent("t1", "u2", "error"), AppEvent("t2", None, "song_play")],
        [
            BusinessFigures("t1", revenue=2.5, active_users=10, conversion_rate=0.5),
            BusinessFigures("t1", revenue=1),
        ],
    )
    assert n == 6
    snap = col.snapshot("t1")
    assert snap["events"] == {"song_play": 2, "error": 1}
    assert snap["event_durations"] == {"song_play": {"count": 2, "sum_seconds": pytest.approx(0.4)}}
    assert (snap["revenue"], snap["active_users"], snap["conversion_rate"]) == (3.5, 10, 0.5)
    assert snap["unique_users"] == {"1h": 2, "1d": 2}
    assert col.snapshot("t2")["unique_users"] == {}
    assert col.tenants() == ["t1", "t2"]
    agg = col.aggregated()
    assert agg["tenants"] == 2 and agg["events"]["song_play"] == 3 and agg["events_total"] == 4
    assert agg["revenue"] == 3.5


def test_metadata_outside_allowlist_is_dropped() -> None:
    col = make()
    col.ingest(
        [
            AppEvent("t1", "u", "song_play", {"duration_seconds": 9, "track_genre": "pop", "email": "a@b"}),
            AppEvent("t1", "u", "seek", {"duration_ms": 5, "note": "dropped"}),
        ],
        [],
    )
    snap = col.snapshot("t1")
    assert snap["event_durations"] == {}  # song_play allows only duration_ms; "*" only duration_seconds
    body = col.render()
    assert b"pop" not in body and b"a@b" not in body and b"email" not in body


def test_event_type_limit_is_422_with_reason() -> None:
    col = make()
    col.ingest([AppEvent("t1", None, f"e{i}") for i in range(4)], [])
    with pytest.raises(IngestError) as err:
        col.ingest([AppEvent("t1", None, "e0"), AppEvent("t1", None, "e4"), AppEvent("t1", None, "e5")], [])
    assert (err.value.field, err.value.reason, err.value.status) == (
        "events[2].event_type",
        "event type limit reached (5)",
        422,
    )
    assert col.snapshot("t1")["events"] == {f"e{i}": 1 for i in range(4)}
    col.ingest(
        [AppEvent("t1", None, "e4"), AppEvent("t2", None, "e9")], []
    )  # the 5th fits; others unaffected


def test_series_limit_is_422_and_counts_histograms() -> None:
    col = make(max_series_per_tenant=20)  # one histogram is 17 series (14 buckets + Inf, sum, count)
    col.ingest([AppEvent("t1", None, "song_play", {"duration_ms": 1})], [])
    assert col.snapshot("t1")["series"] == 18
    col.ingest([], [BusinessFigures("t1", revenue=1, active_users=1)])
    with pytest.raises(IngestError) as err:
        col.ingest(
            [AppEvent("t1", None, "song_play")], [BusinessFigures("t1", revenue=1, conversion_rate=0.1)]
        )
    assert (err.value.field, err.value.reason, err.value.status) == (
        "business[0].conversion_rate",
        "series limit reached (20)",
        422,
    )
    with pytest.raises(IngestError, match="series limit reached"):
        col.ingest([AppEvent("t1", "u1", "song_play")], [])  # unique users would add 2 series
    assert col.snapshot("t1")["events"] == {"song_play": 1}


def test_seed_async_api() -> None:
    col = make()

    async def run() -> None:
        await col.collect_app_metrics("t1", "u1", "song_play", {"duration_ms": 1500})
        await col.collect_app_metrics("t1", "u1", "song_play")
        await col.collect_business_metrics("t1", revenue=9.99, active_users=3)
        with pytest.raises(IngestError):
            await col.collect_business_metrics("t1", conversion_rate=2)

    asyncio.run(run())
    snap = col.snapshot("t1")
    assert snap["events"] == {"song_play": 2} and snap["revenue"] == 9.99 and snap["conversion_rate"] is None
    assert snap["unique_users"]["1h"] == 1


def test_self_monitoring_bounds_reasons_and_invalid_tenants() -> None:
    col = make()
    for i in range(25):
        col.count_rejected("t1", f"reason_{i}")
    col.count_rejected("t1", "Not A Reason!")
    col.count_rejected("../etc", "bad_value")
    col.observe_request("no tenant", 0.01)
    body = col.render().decode()
    assert body.count('tenantpulse_ingest_rejected_total{tenant="t1"') == 21  # 20 reasons + "other"
    assert 'tenantpulse_ingest_rejected_total{tenant="t1",reason="other"} 6' in body
    assert 'tenant="_invalid",reason="bad_value"} 1' in body
    assert "../etc" not in body
    assert col.tenants() == ["t1"]


def test_remove_tenant_erases_everything() -> None:
    col = make()
    col.ingest([GOOD, AppEvent("t2", "u", "x")], [BusinessFigures("t1", revenue=1)])
    col.register_kpi("t1", "k")
    col.set_kpi("t1", "k", 1)
    report = col.remove_tenant("t1")
    assert report == {"tenant": "t1", "removed": True, "series": 22, "sketches": 2, "kpis": 1}
    assert col.tenants() == ["t2"]
    assert b'tenant="t1"' not in col.render()
    with pytest.raises(KeyError):
        col.snapshot("t1")
    assert col.remove_tenant("t1")["removed"] is False
    col.ingest([AppEvent("t1", None, "x")], [])  # a removed tenant starts afresh
    assert col.snapshot("t1")["events"] == {"x": 1}


def test_user_ids_never_appear_in_output() -> None:
    col = make()
    secret_user = "alice@example.com"
    col.ingest([AppEvent("t1", secret_user, "song_play")], [])
    assert secret_user.encode() not in col.render() + col.render(openmetrics=True)
    assert secret_user not in repr(col.snapshot("t1")) + repr(col.aggregated())


def test_concurrent_ingest_and_render_lose_nothing() -> None:
    col = make(max_event_types_per_tenant=50)

    def writer(t: str) -> None:
        for _ in range(200):
            col.ingest([AppEvent(t, None, "a"), AppEvent(t, None, "b")], [BusinessFigures(t, revenue=1)])

    def reader() -> None:
        for _ in range(50):
            col.render()

    threads = [threading.Thread(target=writer, args=(f"t{i}",)) for i in range(4)]
    threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        snap = col.snapshot(f"t{i}")
        assert snap["events"] == {"a": 200, "b": 200} and snap["revenue"] == 200


def test_config_refuses_unknown_current_key() -> None:
    with pytest.raises(ValueError, match="not in pseudonym_keys"):
        MetricsCollector(CollectorConfig(pseudonym_keys={"v1": b"x"}, pseudonym_key_current="v2"))
    with pytest.raises(ValueError, match="must name one"):
        MetricsCollector(CollectorConfig(pseudonym_keys={"v1": b"x", "v2": b"y"}))


HUGE = int("9" * 401)


@pytest.mark.parametrize(
    ("batch", "field"),
    [
        (([AppEvent("t1", "u", "song_play", {"duration_ms": HUGE})], []), "events[0].metadata.duration_ms"),
        (([AppEvent("t1", "u", "x", {"duration_seconds": HUGE})], []), "events[0].metadata.duration_seconds"),
        (([], [BusinessFigures("t1", revenue=HUGE)]), "business[0].revenue"),
        (([], [BusinessFigures("t1", active_users=HUGE)]), "business[0].active_users"),
        (([], [BusinessFigures("t1", conversion_rate=HUGE)]), "business[0].conversion_rate"),
        (([], [BusinessFigures("t1", revenue=1.5e308)]), "business[0].revenue"),
    ],
)
def test_huge_numbers_are_refused_not_overflowing(batch: tuple, field: str) -> None:
    m = make()
    with pytest.raises(IngestError) as err:
        m.ingest(*batch)
    assert err.value.field == field and err.value.status == 422
    assert m.tenants() == []


@pytest.mark.parametrize("value", [HUGE, -HUGE, 1.5e308])
def test_huge_kpi_values_are_refused_not_overflowing(value: float) -> None:
    m = make()
    m.register_kpi("t1", "plays", "counter")
    m.register_kpi("t1", "level", "gauge")
    with pytest.raises(IngestError) as err:
        m.inc_kpi("t1", "plays", value)
    assert err.value.field == "value" and "at most" in err.value.reason
    with pytest.raises(IngestError):
        m.set_kpi("t1", "level", value)
    assert m.snapshot("t1")["kpis"]["plays"]["values"] == []
