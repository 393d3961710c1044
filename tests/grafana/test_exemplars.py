"""Exemplars: the latency panels' targets find trace exemplars in a real Prometheus, under the label the
provisioned Prometheus datasource maps to the Jaeger datasource — so a click opens the trace.

The exporter runs with tracing on (console span exporter: every request is a sampled span), Prometheus
with exemplar storage (so it scrapes OpenMetrics and keeps the exemplars).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tenantpulse.grafana import provisioning, realtime
from tenantpulse.grafana import spec as s
from tenantpulse.grafana.render import to_data
from tests.grafana.test_structure import panels_of
from tests.support.exporter import Exporter
from tests.support.ports import wait_until
from tests.support.prometheus import Prometheus

pytestmark = pytest.mark.integration

TENANT = "t1"


class ExemplarPrometheus(Prometheus):
    """The harness's Prometheus with a query for exemplars; started with ``--enable-feature=exemplar-storage``."""

    def exemplars(self, expr: str) -> list[dict[str, str]]:
        r = requests.get(
            f"{self.url}/api/v1/query_exemplars", params={"query": expr, "start": "0"}, timeout=10
        )
        body = r.json()
        assert body["status"] == "success", body
        return [e["labels"] for series in body["data"] for e in series["exemplars"]]


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExemplarPrometheus]:
    work = tmp_path_factory.mktemp("dashboards-exemplars")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OTEL_TRACES_EXPORTER", "console")
        mp.delenv("OTEL_SDK_DISABLED", raising=False)
        with Exporter(work / "exporter", tenants=(TENANT,)) as exporter:
            (work / "prometheus").mkdir()
            with ExemplarPrometheus(
                work / "prometheus",
                [exporter.scrape_config("tenantpulse")],
                extra_args=["--enable-feature=exemplar-storage"],
            ) as p:
                wait_until(p.targets_up, what="exporter scraped")
                event = {"tenant_id": TENANT, "event_type": "song_play", "metadata": {"duration_ms": 120}}

                # Keep posting until Prometheus has scraped some exemplars (each request is a new trace).
                def post_and_look() -> list[dict[str, str]]:
                    exporter.post(
                        {"events": [event, {**event, "metadata": {"duration_ms": 900}}]}, key=TENANT
                    )
                    return p.exemplars(f'{{__name__=~".+_bucket", tenant="{TENANT}"}}')

                wait_until(post_and_look, timeout=30, interval=0.25, what="exemplars in Prometheus")
                yield p


def exemplar_targets() -> list[tuple[str, str]]:
    board = to_data(realtime.create_realtime_dashboard(widgets=["system_health", "latency"]))
    return [
        (panel["title"], t["expr"])
        for panel in panels_of(board)
        for t in panel.get("targets", [])
        if t.get("exemplar")
    ]


def test_latency_targets_find_exemplars_under_the_linked_trace_label(prom: ExemplarPrometheus) -> None:
    targets = exemplar_targets()
    assert len(targets) >= 4  # ingest p95, event p50/p95/p99, duration heatmap
    label = provisioning.datasources(s.GrafanaTarget())["datasources"][0]["jsonData"][
        "exemplarTraceIdDestinations"
    ][0]["name"]
    for title, expr in targets:
        query = expr.replace("$tenant", TENANT).replace("$__rate_interval", "30s")
        found = wait_until(lambda q=query: prom.exemplars(q), timeout=20, what=f"exemplars for {title}")
        assert all(re.fullmatch(r"[0-9a-f]{32}", e[label]) for e in found), (title, found[:2])


def test_exemplar_storage_is_what_makes_them_visible(tmp_path: Path) -> None:
    """Guard against a vacuous pass: the same query on a Prometheus without exemplar storage finds none."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OTEL_TRACES_EXPORTER", "console")
        with Exporter(tmp_path / "exporter", tenants=(TENANT,)) as exporter:
            (tmp_path / "prometheus").mkdir()
            with Prometheus(tmp_path / "prometheus", [exporter.scrape_config("tenantpulse")]) as plain:
                wait_until(plain.targets_up, what="exporter scraped")
                exporter.post(
                    {"tenant_id": TENANT, "event_type": "song_play", "metadata": {"duration_ms": 5}},
                    key=TENANT,
                )
                wait_until(
                    lambda: plain.query(f'tenantpulse_events_total{{tenant="{TENANT}"}}'), what="scraped"
                )
                r = requests.get(
                    f"{plain.url}/api/v1/query_exemplars",
                    params={"query": '{__name__=~".+_bucket"}', "start": "0"},
                    timeout=10,
                ).json()
                assert r["status"] == "success" and r["data"] == []
