"""The sidecar read through a real VictoriaMetrics with its own default latency offset
(``-search.latencyOffset=30s``), beside a real Prometheus scraping the same exporter at the same pace.

VictoriaMetrics hides samples younger than that offset: an instant query "now" answers the value of
30 s ago, a range query repeats that value over its last 30 s, and a series younger than 30 s has no
sample at all. The reader's ``nocache=1`` / ``latency_offset=0s`` and the backfill's instant-query tail
(``ServiceConfig.latency_offset``) make the sidecar see what Prometheus shows, within one cycle.

Both scrape every second; the sidecar cycles every ``INTERVAL`` (2 s): VictoriaMetrics makes a scraped
sample searchable only after its pending rows are flushed (up to about 2 s, apart from the offset), so
a 1 s cycle would compare that flush, not the offset.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tenantpulse.anomaly_sidecar.reader import PrometheusReader
from tenantpulse.anomaly_sidecar.service import ServiceConfig, SidecarService
from tenantpulse.conventions import catalog as c
from tenantpulse.conventions import indicators
from tenantpulse.exporters.traffic import TenantProfile, TrafficGenerator
from tenantpulse.kernel.processes import ChildProcess
from tests.support.exporter import Exporter
from tests.support.ports import wait_until
from tests.support.prometheus import Prometheus
from tests.support.victoriametrics import VictoriaMetrics, require_victoriametrics

pytestmark = pytest.mark.integration

TENANTS = ("t1", "t2")
WATCH = "request_rate"
EXPR = indicators.get(WATCH).promql(window="5s")
INTERVAL = 2.0


class DeployedVictoriaMetrics(VictoriaMetrics):
    """The support node with VictoriaMetrics' default latency offset and cache, as it is deployed."""

    def start(self) -> DeployedVictoriaMetrics:
        command = [
            require_victoriametrics(),
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.data}",
            f"-promscrape.config={self.config_path}",
            "-loggerLevel=WARN",
        ]
        self.child = ChildProcess("victoria-metrics", command, self.workdir / "victoria-metrics.log")
        self.child.start(f"{self.url}/health", timeout=30)
        return self


def service(url: str) -> SidecarService:
    config = ServiceConfig(indicators=(WATCH,), interval=INTERVAL, rate_window=5.0, warmup=5)
    return SidecarService(PrometheusReader(url, retries=0, timeout=5), config)


@pytest.fixture(scope="module")
def backends(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TrafficGenerator, Prometheus, VictoriaMetrics, float]]:
    """Traffic, Prometheus and VictoriaMetrics; the time both first held data."""
    work = Path(tmp_path_factory.mktemp("sidecar-vm"))
    require_victoriametrics()
    with Exporter(work / "exporter", tenants=TENANTS) as exporter:
        traffic = TrafficGenerator(
            exporter.url, [TenantProfile(t, exporter.keys[t], rate=200.0) for t in TENANTS], seed=3
        ).start(interval=0.25)
        scrape = [exporter.scrape_config("tenantpulse")]
        with Prometheus(work, scrape) as prom, DeployedVictoriaMetrics(work / "vm", scrape) as vm:
            try:
                check = c.EVENTS.selector()
                wait_until(lambda: prom.value(f"count({check})"), timeout=30, what="Prometheus data")
                wait_until(lambda: vm.query(f"count({check})", nocache="1"), timeout=30, what="VM data")
                yield traffic, prom, vm, time.time()
            finally:
                traffic.stop()


def test_backfill_soon_after_start_finds_the_samples(
    backends: tuple[TrafficGenerator, Prometheus, VictoriaMetrics, float],
) -> None:
    _, prom, vm, since = backends
    time.sleep(max(0.0, since + 6 - time.time()))  # some seconds of data: far less than the 30 s offset
    assert time.time() - since < 25, "the samples must be younger than VictoriaMetrics' offset"
    through_prom, through_vm = service(prom.url), service(vm.url)
    learned_prom, learned_vm = through_prom.backfill(20.0), through_vm.backfill(20.0)
    assert learned_prom > 0
    assert learned_vm >= learned_prom - len(TENANTS)  # within one cycle per series
    slots = [through_vm.registry.get((t, WATCH)) for t in TENANTS]
    assert all(i is not None and through_vm.observed[i] >= 1 for i in slots)


def test_backfill_tail_follows_the_data_not_one_repeated_value(
    backends: tuple[TrafficGenerator, Prometheus, VictoriaMetrics, float],
) -> None:
    _, prom, vm, since = backends
    time.sleep(max(0.0, since + 40 - time.time()))  # more data than the offset hides
    end = time.time()
    rows = {r.labels[c.TENANT]: r for r in service(vm.url).history(EXPR, end - 40, end)}
    truth = {r.labels[c.TENANT]: r for r in service(prom.url).history(EXPR, end - 40, end)}
    assert set(rows) == set(TENANTS)
    for tenant in TENANTS:
        got, want = rows[tenant], truth[tenant]
        last = got.times > end - 30
        assert got.times[-1] >= end - 1  # up to the moment asked
        assert np.unique(got.values[last]).size > 5  # the last 30 s move, as the traffic does
        assert abs(got.times.size - want.times.size) <= 1
        assert np.allclose(np.diff(got.times[last]), INTERVAL, atol=0.05)  # every step, by instant queries
        # Two scrapers of the same counters at their own phases: the rates agree on the whole.
        assert np.median(got.values[last]) == pytest.approx(
            np.median(want.values[want.times > end - 30]), rel=0.2
        )


def test_cycles_see_a_drop_within_one_cycle_of_prometheus(
    backends: tuple[TrafficGenerator, Prometheus, VictoriaMetrics, float],
) -> None:
    """The traffic stops: the first cycle reading a request rate near zero, per backend."""
    traffic, prom, vm, _ = backends
    readers = {"prometheus": PrometheusReader(prom.url), "victoriametrics": PrometheusReader(vm.url)}
    calm = {name: r.query(EXPR).values.min() for name, r in readers.items()}
    assert min(calm.values()) > 50
    traffic.stop()
    seen: dict[str, int] = {}
    for cycle in range(20):
        at = time.time()
        for name, reader in readers.items():
            if name not in seen and reader.query(EXPR, at=at).values.max() < 0.1 * calm[name]:
                seen[name] = cycle
        if len(seen) == len(readers):
            break
        time.sleep(INTERVAL)
    assert "prometheus" in seen, "Prometheus never showed the drop"
    assert "victoriametrics" in seen, "VictoriaMetrics still answered the old rate 20 cycles later"
    assert seen["victoriametrics"] <= seen["prometheus"] + 1
