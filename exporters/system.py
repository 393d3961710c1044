"""Host CPU and memory as the exporter sees them (psutil), for the catalog's SYSTEM_* gauges."""

from __future__ import annotations

import psutil

psutil.cpu_percent(interval=None)  # the first reading is meaningless; take it at import


def read_host() -> tuple[float, float]:
    """(CPU utilisation 0..1 since the previous call, memory in use in bytes); never blocks."""
    cpu = psutil.cpu_percent(interval=None) / 100.0
    return cpu, float(psutil.virtual_memory().used)
