"""Prometheus durations, parsed in one place: specs check them as Prometheus will, services turn them into seconds."""

from __future__ import annotations

import math
import re

from tenantpulse.kernel.errors import UsageError

# What Prometheus itself accepts in rules, ``for:`` and Alertmanager timers: units largest first, integers.
PROMETHEUS_DURATION_RE = re.compile(r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$")


def is_prometheus_duration(text: object) -> bool:
    """True for a non-empty duration Prometheus accepts verbatim (``30s``, ``1h30m``, ``7d``)."""
    return isinstance(text, str) and bool(text) and PROMETHEUS_DURATION_RE.match(text) is not None


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus-style duration (``15s``, ``5m``, ``1h30m``, ``30d``) or a plain number."""
    text = str(text).strip()
    try:
        value = float(text)
    except ValueError:
        parts = _DURATION_RE.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise UsageError(f"invalid duration {text!r}: use e.g. 15s, 5m, 1h, 30d") from None
        value = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"invalid duration {text!r}: must be positive")
    return value


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration for whole seconds (``90`` -> ``1m30s``), used in PromQL and labels."""
    rest = int(round(seconds))
    if rest <= 0:
        return f"{int(seconds * 1000)}ms"
    out = ""
    for unit in ("d", "h", "m", "s"):
        n, rest = divmod(rest, int(_UNIT_SECONDS[unit]))
        if n:
            out += f"{n}{unit}"
    return out
