"""Alarm thresholds on the anomaly score, by sensitivity preset: what the sidecar, alert specs and dashboards share.

NAB's standard profile picks about 0.84 for the detector (``benchmarks/bench_nab.py``), nearest high;
medium is stricter, so that calm series cross it at most a few times per 100,000 samples (a new record
alone reaches high, not medium); low alarms only on the clearest cases.
"""

from __future__ import annotations

SENSITIVITY: dict[str, float] = {"low": 0.95, "medium": 0.9, "high": 0.8}
