"""The Python examples of the detector and forecasts, in README.md's "Anomaly sidecar" section and in
docs/sidecar.md's "Python" section, run as written against a Prometheus-compatible API on loopback
(the scripted one of tests/support/sidecar.py: it answers any history, which a fresh Prometheus has not)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from tests.anomaly_sidecar.test_service import TENANTS, World
from tests.support.sidecar import FakePrometheusApi

REPO = Path(__file__).resolve().parents[2]


def section(path: Path, heading: str) -> str:
    text = path.read_text()
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def readme_calls() -> list[str]:
    """The inline Python calls of the README's sidecar section (``AnomalyDetector(...)...``)."""
    spans = re.findall(r"`([^`\n]+)`", section(REPO / "README.md", "## Anomaly sidecar"))
    return [s for s in spans if s.startswith(("AnomalyDetector(", "PredictiveAnalytics("))]


def world() -> World:
    w = World(TENANTS)
    w.by_expr |= {k.replace("[10s]", "[5m]"): v for k, v in w.by_expr.items()}  # the facade's rate window
    return w


def test_the_readme_sidecar_examples_run_as_written() -> None:
    calls = readme_calls()
    assert len(calls) == 2, calls
    imports = re.search(
        r"`(from tenantpulse import [^`]+)`", section(REPO / "README.md", "## Anomaly sidecar")
    )
    assert imports, "the section names the import"
    with FakePrometheusApi(world().answer) as api:
        namespace: dict[str, Any] = {"prometheus_url": api.url}
        exec(imports.group(1), namespace)
        hits = eval(calls[0], namespace)
        forecasts = eval(calls[1], namespace)
    assert set(hits) == {"error_rate"} and hits["error_rate"].times.size >= 60
    assert hits["error_rate"].anomalies == []  # calm data
    assert set(forecasts) == set(TENANTS)
    f = forecasts["t1"]
    assert f.mean.size > 0 and np.all(f.lower <= f.mean) and np.all(f.mean <= f.upper)


def test_the_sidecar_docs_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", section(REPO / "docs" / "sidecar.md", "## Python"), re.S)
    assert len(blocks) == 1
    with FakePrometheusApi(world().answer) as api:
        code = blocks[0].replace("http://localhost:9090", api.url)  # the one change: where Prometheus is
        namespace: dict[str, Any] = {}
        exec(code, namespace)
    assert namespace["hits"]["error_rate"].times.size >= 60
    assert namespace["f"]["t1"].mean.size > 0
