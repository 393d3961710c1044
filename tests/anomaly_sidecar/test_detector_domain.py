"""The expected band respects the indicator's domain: a ratio's band stays in [0, 1], a rate's >= 0."""

from __future__ import annotations

import numpy as np

from tenantpulse.anomaly_sidecar.detector import DetectorBank
from tenantpulse.anomaly_sidecar.reader import PrometheusReader
from tenantpulse.anomaly_sidecar.service import ServiceConfig, SidecarService
from tenantpulse.conventions import catalog as c
from tenantpulse.conventions import indicators


def small_ratio(n: int, seed: int) -> np.ndarray:
    """An error ratio of about 1.5% with noise of the same size: its band reaches below 0."""
    rng = np.random.default_rng(seed)
    return np.clip(0.015 + 0.012 * rng.normal(size=n), 0.0, 1.0)


def test_indicator_domains() -> None:
    assert indicators.get("error_rate").domain == (0.0, 1.0)
    assert indicators.get("conversion_rate").domain == (0.0, 1.0)
    assert indicators.get("request_rate").domain == (0.0, np.inf)
    assert indicators.get("p95_latency").domain[0] == 0.0


def test_band_is_clipped_to_the_domain_and_scores_do_not_change() -> None:
    x = small_ratio(400, seed=1)
    x[300] = 0.9
    t = np.arange(400) * 15.0
    free, bounded = DetectorBank(warmup=50), DetectorBank(warmup=50)
    i_free, i_bounded = free.add(1), bounded.add(1)
    bounded.set_domain(i_bounded, 0.0, 1.0)
    assert bounded.domain_set(i_bounded).all() and not free.domain_set(i_free).any()
    lows, clipped = [], []
    for k in range(400):
        a, b = free.update(i_free, t[k], x[k : k + 1]), bounded.update(i_bounded, t[k], x[k : k + 1])
        np.testing.assert_array_equal(a.score, b.score)
        lows.append(a.lower[0])
        clipped.append((b.lower[0], b.expected[0], b.upper[0]))
    band = np.array(clipped[1:])
    assert min(lows[1:]) < 0  # unclipped, the band goes below 0 ...
    assert band.min() >= 0.0 and band.max() <= 1.0  # ... clipped, it does not
    assert np.all(band[:, 0] <= band[:, 1]) and np.all(band[:, 1] <= band[:, 2])
    # the domain survives a state round trip and a freed slot forgets it
    restored = DetectorBank.from_state(bounded.state())
    assert restored.domain_set(i_bounded).all()
    bounded.remove(i_bounded)
    assert not bounded.domain_set(i_bounded).any()


def test_sidecar_publishes_a_ratio_band_inside_0_1() -> None:
    svc = SidecarService(PrometheusReader("http://127.0.0.1:9"), ServiceConfig(indicators=("error_rate",)))
    _, idx = svc.registry.resolve("error_rate", ["t1"])
    _, rate_idx = svc.registry.resolve("request_rate", ["t1"])
    x = small_ratio(300, seed=2)
    t = 1_700_000_000.0 + np.arange(300) * 15.0
    svc.learn(np.repeat([idx[0], rate_idx[0]], 300), np.tile(t, 2), np.concatenate([x, x - 0.015]))
    lower, upper = svc.table.get(c.ANOMALY_LOWER, int(idx[0])), svc.table.get(c.ANOMALY_UPPER, int(idx[0]))
    assert 0.0 <= lower <= upper <= 1.0
    assert svc.table.get(c.ANOMALY_LOWER, int(rate_idx[0])) >= 0.0
    assert 0.0 <= svc.table.get(c.ANOMALY_EXPECTED, int(idx[0])) <= 1.0
