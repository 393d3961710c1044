"""Tenant custom KPIs: registration rules, typed updates, bounded labels, exposition."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tenantpulse.conventions import catalog as c
from tenantpulse.exporters.collector import CollectorConfig, MetricsCollector
from tenantpulse.exporters.events import IngestError
from tenantpulse.exporters.kpis import MAX_LABEL_SETS


@pytest.fixture
def col() -> MetricsCollector:
    return MetricsCollector(CollectorConfig(max_series_per_tenant=500))


def exposed(col: MetricsCollector) -> dict[tuple[str, frozenset], float]:
    families = text_string_to_metric_families(col.render().decode())
    return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}


def test_gauge_and_counter_kpis_are_exposed_under_catalog_families(col: MetricsCollector) -> None:
    col.register_kpi("t1", "basket_value", help="Mean basket.", labels=("region", "plan"))
    col.set_kpi("t1", "basket_value", 12.5, {"region": "eu", "plan": "pro"})
    col.set_kpi("t1", "basket_value", 13, {"region": "eu", "plan": "pro"})
    col.inc_kpi("t1", "basket_value", -1, {"region": "us", "plan": "free"})
    col.register_kpi("t1", "refunds", type="counter")
    col.inc_kpi("t1", "refunds")
    col.inc_kpi("t1", "refunds", 2.5)
    got = exposed(col)
    key = frozenset({"tenant": "t1", "kpi": "basket_value", "region": "eu", "plan": "pro"}.items())
    assert got[(c.CUSTOM_KPI.name, key)] == 13
    key = frozenset({"tenant": "t1", "kpi": "basket_value", "region": "us", "plan": "free"}.items())
    assert got[(c.CUSTOM_KPI.name, key)] == -1
    assert got[(c.CUSTOM_KPI_COUNTER.name, frozenset({"tenant": "t1", "kpi": "refunds"}.items()))] == 3.5
    snap = col.snapshot("t1")["kpis"]
    assert snap["refunds"]["values"] == [{"labels": {}, "value": 3.5}]
    assert snap["basket_value"]["help"] == "Mean basket."


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "Bad-Name"}, "name"),
        ({"name": "x" * 64}, "name"),
        ({"type": "histogram"}, "type"),
        ({"help": "h" * 201}, "help"),
        ({"labels": ("a", "b", "c", "d")}, "labels"),
        ({"labels": ("tenant",)}, "labels[0]"),
        ({"labels": ("ok", "le")}, "labels[1]"),
        ({"labels": ("a", "a")}, "labels"),
        ({"labels": "region"}, "labels"),
    ],
)
def test_bad_registration_names_field(col: MetricsCollector, kwargs: dict, field: str) -> None:
    args = {"name": "k", "type": "gauge", "help": "", "labels": (), **kwargs}
    with pytest.raises(IngestError) as err:
        col.register_kpi("t1", **args)
    assert err.value.field == field and err.value.status == 422
    assert col.tenants() == []


def test_reregistration_is_idempotent_but_not_redefinable(col: MetricsCollector) -> None:
    col.register_kpi("t1", "k", labels=["a"])
    col.register_kpi("t1", "k", labels=("a",))
    with pytest.raises(IngestError, match="another declaration"):
        col.register_kpi("t1", "k", type="counter", labels=("a",))
    col.register_kpi("t2", "k", type="counter")  # KPIs are per tenant


def test_bad_updates_are_refused_without_effect(col: MetricsCollector) -> None:
    col.register_kpi("t1", "k", labels=("region",))
    col.register_kpi("t1", "c", type="counter")
    cases = [
        (lambda: col.set_kpi("t1", "missing", 1), "kpi"),
        (lambda: col.set_kpi("t2", "k", 1, {"region": "eu"}), "kpi"),
        (lambda: col.set_kpi("t1", "k", 1), "labels"),
        (lambda: col.set_kpi("t1", "k", 1, {"region": "eu", "x": "y"}), "labels"),
        (lambda: col.set_kpi("t1", "k", 1, {"region": ""}), "labels.region"),
        (lambda: col.set_kpi("t1", "k", 1, {"region": "a\nb"}), "labels.region"),
        (lambda: col.set_kpi("t1", "k", 1, {"region": "r" * 129}), "labels.region"),
        (lambda: col.set_kpi("t1", "k", float("nan"), {"region": "eu"}), "value"),
        (lambda: col.set_kpi("t1", "k", True, {"region": "eu"}), "value"),
        (lambda: col.set_kpi("t1", "c", 5), "value"),
        (lambda: col.inc_kpi("t1", "c", -1), "value"),
        (lambda: col.set_kpi("bad tenant", "k", 1), "tenant"),
    ]
    for call, field in cases:
        with pytest.raises(IngestError) as err:
            call()
        assert err.value.field == field
    assert col.snapshot("t1")["series"] == 0


def test_label_sets_and_kpis_are_bounded(col: MetricsCollector) -> None:
    col.register_kpi("t1", "k", labels=("shard",))
    for i in range(MAX_LABEL_SETS):
        col.set_kpi("t1", "k", i, {"shard": str(i)})
    with pytest.raises(IngestError, match="label set limit"):
        col.set_kpi("t1", "k", 1, {"shard": "one too many"})
    col.set_kpi("t1", "k", 5, {"shard": "0"})  # existing series still update
    for i in range(1, 20):
        col.register_kpi("t1", f"k{i}")
    with pytest.raises(IngestError, match="KPI limit reached"):
        col.register_kpi("t1", "k20")


def test_kpi_series_count_against_the_tenant_cap() -> None:
    col = MetricsCollector(CollectorConfig(max_series_per_tenant=3))
    col.register_kpi("t1", "k", labels=("shard",))
    for i in range(3):
        col.set_kpi("t1", "k", i, {"shard": str(i)})
    with pytest.raises(IngestError) as err:
        col.set_kpi("t1", "k", 1, {"shard": "3"})
    assert err.value.reason == "series limit reached (3)"
