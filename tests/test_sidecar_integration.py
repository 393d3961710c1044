"""The key proof, all real processes on loopback: exporter <- synthetic traffic for 3 tenants; Prometheus
scrapes it; the sidecar reads Prometheus and Prometheus scrapes the sidecar back.

1. One tenant's error spike raises ITS ``tenantpulse_anomaly_score`` (as stored in Prometheus) above the
   threshold within a few cycles; the other tenants stay below.
2. Prometheus stopped: the sidecar keeps serving its last values, stale=1, query errors counted. Restarted
   (same data dir, same port): stale=0 and last_success advances, by itself.
3. The sidecar restarted with its state file: the models come back with their observations (no new
   warm-up) although its backfill only covers a few seconds.

Time is compressed so this fits in about a minute: Prometheus scrapes every 0.25 s and the sidecar
cycles at the same pace (a cycle faster than the scrapes would feed the same data twice) over a 2 s
rate window.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from exporters import catalog as c
from exporters.traffic import TenantProfile, TrafficGenerator
from tests.support.exporter import Exporter
from tests.support.ports import free_port, wait_until
from tests.support.prometheus import Prometheus
from tests.support.sidecar import Sidecar

pytestmark = pytest.mark.integration

TENANTS = ("t1", "t2", "t3")
BAD = "t2"
WATCH = "error_rate"
# Samples each series sees before the anomaly: enough for the detector's own calibration to settle.
CALM_SAMPLES = 180


def score_selector(**labels: str) -> str:
    return c.ANOMALY_SCORE.selector(indicator=WATCH, **labels)


def gauge(sidecar: Sidecar, metric: c.Metric) -> float:
    for line in sidecar.metrics().splitlines():
        if line.startswith(metric.name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{metric.name} not on /metrics")


def models(sidecar: Sidecar) -> dict[str, dict[str, Any]]:
    r = sidecar.get("/analytics/ml/models", key="admin")
    r.raise_for_status()
    return {m["tenant_id"]: m for m in r.json()["models"] if m["indicator"] == WATCH}


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Exporter, TrafficGenerator, Prometheus, Sidecar]]:
    work = tmp_path_factory.mktemp("sidecar-integration")
    sidecar_port = free_port()
    with Exporter(work / "exporter", tenants=TENANTS) as exporter:
        traffic = TrafficGenerator(
            exporter.url, [TenantProfile(t, exporter.keys[t], rate=100.0) for t in TENANTS], seed=7
        ).start(interval=0.25)
        prom = Prometheus(
            work,
            [
                exporter.scrape_config("tenantpulse"),
                {"job_name": "sidecar", "static_configs": [{"targets": [f"127.0.0.1:{sidecar_port}"]}]},
            ],
            scrape_interval="250ms",
            evaluation_interval="250ms",
        ).start()
        sidecar = Sidecar(
            work / "sidecar",
            prom.url,
            tenants=TENANTS,
            port=sidecar_port,
            extra_args=[
                "--indicators", WATCH, "--interval", "250ms", "--rate-window", "2s", "--backfill", "5s",
                "--warmup", "40", "--state-every", "1h", "--forecast-every", "1h",
            ],
        )  # fmt: skip
        try:
            # A counter's first seconds make rate() jumpy; start once every tenant has a few seconds of data.
            full = f"min(count_over_time({c.EVENTS.selector(event_type='error')}[6s]))"
            wait_until(lambda: (prom.value(full) or 0) >= 20, timeout=40, what="traffic in Prometheus")
            sidecar.start()
            yield exporter, traffic, prom, sidecar
        finally:
            traffic.stop()
            sidecar.stop()
            prom.stop()


def test_injected_anomaly_raises_only_that_tenants_score(
    stack: tuple[Exporter, TrafficGenerator, Prometheus, Sidecar],
) -> None:
    _, traffic, prom, sidecar = stack
    wait_until(
        lambda: len(m := models(sidecar)) == 3 and min(x["observations"] for x in m.values()) >= CALM_SAMPLES,
        timeout=90,
        interval=1,
        what=f"{CALM_SAMPLES} calm samples per series",
    )
    threshold = sidecar.get("/analytics/ml/models", key="admin").json()["threshold"]
    calm = {t: prom.value(score_selector(tenant=t)) for t in TENANTS}
    assert all(v is not None and v < threshold for v in calm.values()), calm

    spike_at = time.time()
    traffic.misbehave(BAD, "error_spike")
    detected = wait_until(
        lambda: (v := prom.value(score_selector(tenant=BAD))) is not None and v >= threshold and v,
        timeout=20,
        interval=0.25,
        what=f"{BAD}'s anomaly score above {threshold} in Prometheus",
    )
    took = time.time() - spike_at
    others = prom.query(f"max_over_time({score_selector(tenant='!=' + BAD)}[{max(2, int(took) + 1)}s])")
    assert {r["metric"][c.TENANT] for r in others} == set(TENANTS) - {BAD}
    assert all(float(r["value"][1]) < threshold for r in others), (others, detected)
    assert models(sidecar)[BAD]["alarm"] or float(detected) >= threshold
    traffic.misbehave(BAD, None)


def test_prometheus_outage_stale_then_recovers(
    stack: tuple[Exporter, TrafficGenerator, Prometheus, Sidecar],
) -> None:
    _, _, prom, sidecar = stack
    wait_until(lambda: gauge(sidecar, c.SIDECAR_LAST_SUCCESS) > 0, what="a successful cycle")
    errors_before = gauge(sidecar, c.SIDECAR_QUERY_ERRORS)
    series_before = sidecar.metrics().count(c.ANOMALY_SCORE.name + "{")
    prom.stop()
    down_at = time.time()
    wait_until(lambda: gauge(sidecar, c.ANOMALY_STALE) == 1, timeout=20, what="stale=1")
    wait_until(lambda: gauge(sidecar, c.SIDECAR_QUERY_ERRORS) > errors_before, what="query errors counted")
    assert sidecar.metrics().count(c.ANOMALY_SCORE.name + "{") == series_before  # last values still served
    assert requests.get(f"{sidecar.url}/healthz", timeout=5).json()["stale"] is True
    assert gauge(sidecar, c.SIDECAR_LAST_SUCCESS) <= down_at

    prom.start()  # same port, same data directory
    wait_until(lambda: gauge(sidecar, c.ANOMALY_STALE) == 0, timeout=30, what="stale=0 after the restart")
    wait_until(
        lambda: (prom.value(c.SIDECAR_LAST_SUCCESS.name) or 0) > down_at,
        timeout=30,
        what="last_success advancing",
    )
    assert prom.value(c.ANOMALY_STALE.name) == 0
    assert (prom.value(c.SIDECAR_QUERY_ERRORS.name) or 0) > errors_before


def test_restart_with_state_file_keeps_baselines(
    stack: tuple[Exporter, TrafficGenerator, Prometheus, Sidecar],
) -> None:
    _, _, _, sidecar = stack
    before = models(sidecar)
    assert min(m["observations"] for m in before.values()) >= CALM_SAMPLES
    sidecar.restart()
    after = models(sidecar)
    assert set(after) == set(TENANTS)
    for t in TENANTS:
        # A fresh model would have at most the 5 s backfill (20 samples at 250 ms) and be warming up.
        assert after[t]["observations"] >= before[t]["observations"], (before[t], after[t])
        assert after[t]["warming_up"] is False
    log = (sidecar.workdir / "sidecar.log").read_text()
    assert '"state restored"' in log
    assert Path(sidecar.state_file).stat().st_size > 0
