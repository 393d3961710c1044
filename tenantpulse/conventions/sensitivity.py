"""Alarm thresholds on the anomaly score, by sensitivity preset: what the sidecar, alert specs and dashboards share.

medium is about the threshold NAB's standard profile picks for the detector (``benchmarks/bench_nab.py``);
high alarms earlier and more often, low only on the clearest cases.
"""

from __future__ import annotations

SENSITIVITY: dict[str, float] = {"low": 0.95, "medium": 0.9, "high": 0.8}
