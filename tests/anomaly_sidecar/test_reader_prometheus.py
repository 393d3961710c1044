"""The Prometheus API client against the real Prometheus: answer shapes, chunked range queries stitched
back exactly, and a bad query refused without retries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tenantpulse.anomaly_sidecar.reader import PrometheusReader, QueryError
from tests.support.prometheus import Prometheus

pytestmark = pytest.mark.integration

# PromQL that needs no scraped data: one series per tenant whose value is the evaluation time.
CLOCK = 'label_replace(vector(time()), "tenant", "a", "", "") or label_replace(vector(time() * 2), "tenant", "b", "", "")'


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    with Prometheus(Path(tmp_path_factory.mktemp("reader-prom")), scrape_configs=[]) as prom:
        yield prom


def test_instant_query(prometheus: Prometheus) -> None:
    at = float(int(time.time()))
    vec = PrometheusReader(prometheus.url).query(CLOCK, at=at)
    got = {lab["tenant"]: v for lab, v in zip(vec.labels, vec.values.tolist(), strict=True)}
    assert got == {"a": at, "b": 2 * at}
    assert (vec.times == at).all()


def test_scalar_answer(prometheus: Prometheus) -> None:
    vec = PrometheusReader(prometheus.url).query("scalar(vector(3))")
    assert vec.labels == [{}] and vec.values.tolist() == [3.0]


def test_chunked_range_query_matches_one_request(prometheus: Prometheus) -> None:
    end = float(int(time.time()))
    start = end - 299
    reader = PrometheusReader(prometheus.url)
    whole = {r.labels["tenant"]: r for r in reader.query_range(CLOCK, start, end, 1.0)}
    chunked = {r.labels["tenant"]: r for r in reader.query_range(CLOCK, start, end, 1.0, max_points=37)}
    assert set(chunked) == {"a", "b"}
    for tenant in ("a", "b"):
        np.testing.assert_array_equal(chunked[tenant].times, np.arange(start, end + 1))
        np.testing.assert_array_equal(chunked[tenant].times, whole[tenant].times)
        np.testing.assert_array_equal(chunked[tenant].values, whole[tenant].values)
    np.testing.assert_array_equal(chunked["b"].values, 2 * chunked["b"].times)


def test_bad_query_is_refused_once_with_prometheus_message(prometheus: Prometheus) -> None:
    with pytest.raises(QueryError, match="HTTP 400.*parse error") as info:
        PrometheusReader(prometheus.url, retries=3).query("rate(")
    assert not info.value.retriable
