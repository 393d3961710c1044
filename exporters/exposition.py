"""Prometheus text and OpenMetrics rendering from pre-rendered series templates.

Why not ``prometheus_client.generate_latest``: it re-renders every label set on every scrape, which
costs ~15 us per series. Here each (tenant, family) table keeps one ``%``-template holding all its
label prefixes, rebuilt only when a series is added; a scrape only formats the values into it.
The process's own ``process_*`` metrics, a handful of samples, are ``prometheus_client``'s
(``ProcessCollector``) and shared with the sidecar: ``with_process_metrics``.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client import generate_latest as text_exposition
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_exposition

from tenantpulse.conventions.catalog import Metric
from tenantpulse.conventions.exposition import escape_label_value

Key = str | tuple[str, ...]  # a bare string when the table has exactly one label of its own
Exemplar = tuple[str, float, float]  # rendered label set, observed value, unix time


def escape_help(text: str, openmetrics: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if openmetrics else text


def format_value(value: float) -> str:
    """Go-style float text, as Prometheus writes it (``+Inf``, ``NaN``, ``1.0``)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def header(metric: Metric, openmetrics: bool) -> str:
    """HELP/TYPE (and UNIT in OpenMetrics) lines, written once per family."""
    if openmetrics:
        name = metric.family
        unit = f"# UNIT {name} {metric.unit}\n" if metric.unit else ""
        return f"# TYPE {name} {metric.type}\n{unit}# HELP {name} {escape_help(metric.help, True)}\n"
    name = metric.name
    return f"# HELP {name} {escape_help(metric.help, False)}\n# TYPE {name} {metric.type}\n"


def render_labels(names: Sequence[str], values: Sequence[str] | str) -> str:
    if isinstance(values, str):
        values = (values,)
    return ",".join(f'{n}="{escape_label_value(v)}"' for n, v in zip(names, values, strict=True))


def render_exemplar(labels: dict[str, str], value: float, timestamp: float) -> Exemplar:
    """Pre-render an exemplar's label set once, when it is recorded."""
    return "{" + render_labels(list(labels), list(labels.values())) + "}", value, timestamp


def histogram_series(metric: Metric) -> int:
    """Series one label set of a histogram exposes: a bucket per bound, +Inf, _sum and _count."""
    return len(metric.buckets) + 3


INT_LIMIT = 2**53  # integers beyond this lose precision as floats anyway


class SeriesTable:
    """Counter or gauge series of one family for one tenant: label keys -> slots in a value array.

    Values stay in an int64 array while they are all whole numbers (counts usually are): an int
    formats three times faster than a float's shortest repr, and that formatting is most of a scrape.
    """

    __slots__ = ("metric", "label_names", "_fixed", "index", "values", "_template")

    def __init__(self, metric: Metric, fixed: dict[str, str], extra_labels: Sequence[str] = ()) -> None:
        self.metric = metric
        self._fixed = sys.intern(
            render_labels(list(fixed), list(fixed.values()))
        )  # shared by a tenant's tables
        self.label_names = tuple(n for n in (*metric.labels, *extra_labels) if n not in fixed)
        self.index: dict[Key, int] = {}
        # Typecode "q" (ints) until a value needs "d" (floats): which one it holds is a runtime fact
        # (``values.typecode``) that mypy cannot follow, so the element type is left open.
        self.values: array[Any] = array("q")
        self._template: bytes | None = None

    def __len__(self) -> int:
        return len(self.values)

    def slot(self, key: Key) -> int:
        """Slot of the series with these label values, created (at 0) when new."""
        i = self.index.get(key)
        if i is None:
            i = self.index[key] = len(self.values)
            self.values.append(0)
            self._template = None
        return i

    def _put(self, i: int, value: float) -> None:
        if self.values.typecode == "q":
            if isinstance(value, float):
                value = int(value) if value.is_integer() else value
            if isinstance(value, float) or not -INT_LIMIT < value < INT_LIMIT:
                self.values = array("d", self.values)
                self._template = None  # its placeholders were for integers
        self.values[i] = value

    def add(self, key: Key, amount: float) -> None:
        i = self.slot(key)
        self._put(i, self.values[i] + amount)

    def set(self, key: Key, value: float) -> None:
        self._put(self.slot(key), value)

    def get(self, key: Key, default: float | None = None) -> float | None:
        i = self.index.get(key)
        return default if i is None else float(self.values[i])

    def items(self) -> list[tuple[Key, float]]:
        return [(k, float(self.values[i])) for k, i in self.index.items()]

    def _build(self) -> bytes:
        """A bytes template: ``%d`` (integers) or ``%a`` (float repr) placeholders for the values."""
        name = self.metric.name
        slot = "%d" if self.values.typecode == "q" else "%a"
        lines: list[str] = []
        for key in self.index:
            labels = ",".join(x for x in (self._fixed, render_labels(self.label_names, key)) if x)
            labels = labels.replace("%", "%%")
            lines.append(f"{name}{{{labels}}} {slot}\n" if labels else f"{name} {slot}\n")
        return "".join(lines).encode()

    def render(self, openmetrics: bool = False) -> bytes:
        """The table's sample lines (the same in both formats: counters and gauges carry no exemplars)."""
        if self._template is None:
            self._template = self._build()
        return self._template % tuple(self.values)


class HistogramTable:
    """Histogram series of one family for one tenant, with the last exemplar per bucket."""

    __slots__ = (
        "metric",
        "label_names",
        "_fixed",
        "bounds",
        "index",
        "counts",
        "sums",
        "exemplars",
        "_template",
    )

    def __init__(self, metric: Metric, fixed: dict[str, str]) -> None:
        self.metric = metric
        self._fixed = sys.intern(render_labels(list(fixed), list(fixed.values())))
        self.label_names = tuple(n for n in metric.labels if n not in fixed)
        self.bounds = metric.buckets
        self.index: dict[Key, int] = {}
        self.counts: list[array[int]] = []  # per series: non-cumulative counts, last one is +Inf
        self.sums = array("d")
        self.exemplars: dict[tuple[int, int], Exemplar] = {}
        self._template: str | None = None

    def __len__(self) -> int:
        return len(self.sums) * histogram_series(self.metric)

    def slot(self, key: Key) -> int:
        i = self.index.get(key)
        if i is None:
            i = self.index[key] = len(self.sums)
            self.counts.append(array("q", bytes(8 * (len(self.bounds) + 1))))
            self.sums.append(0.0)
            self._template = None
        return i

    def observe(self, key: Key, value: float, exemplar: Exemplar | None = None) -> None:
        i = self.slot(key)
        b = bisect_left(self.bounds, value)
        self.counts[i][b] += 1
        self.sums[i] += value
        if exemplar is not None:
            self.exemplars[(i, b)] = exemplar

    def observe_many(self, key: Key, values: list[float], exemplar: Exemplar | None = None) -> None:
        """Observe a batch; the exemplar (trace ids) goes on the bucket of the batch's last value."""
        i = self.slot(key)
        counts, bounds = self.counts[i], self.bounds
        for v in values:
            counts[bisect_left(bounds, v)] += 1
        self.sums[i] += math.fsum(values)
        if exemplar is not None:
            last = values[-1]
            self.exemplars[(i, bisect_left(bounds, last))] = (exemplar[0], last, exemplar[2])

    def count_and_sum(self, key: Key) -> tuple[float, float] | None:
        i = self.index.get(key)
        return None if i is None else (float(sum(self.counts[i])), self.sums[i])

    def _build(self) -> str:
        name = self.metric.name
        les = [format_value(b) for b in (*self.bounds, math.inf)]
        lines: list[str] = []
        for key in self.index:
            labels = ",".join(x for x in (self._fixed, render_labels(self.label_names, key)) if x)
            labels = labels.replace("%", "%%")
            sep = "," if labels else ""
            lines.extend(f'{name}_bucket{{{labels}{sep}le="{le}"}} %s\n' for le in les)
            brace = f"{{{labels}}}" if labels else ""
            lines.append(f"{name}_sum{brace} %s\n{name}_count{brace} %s\n")
        return "".join(lines)

    def render(self, openmetrics: bool) -> bytes:
        if self._template is None:
            self._template = self._build()
        values: list[float | str] = []
        exemplars = self.exemplars if openmetrics else {}
        for i, counts in enumerate(self.counts):
            cumulative = list(accumulate(counts))
            if exemplars:
                for b, count in enumerate(cumulative):
                    ex = exemplars.get((i, b))
                    values.append(f"{count!r} # {ex[0]} {ex[1]!r} {ex[2]:.3f}" if ex else count)
            else:
                values.extend(cumulative)
            values.append(self.sums[i])
            values.append(cumulative[-1])
        return (self._template % tuple(values)).encode()


Table = SeriesTable | HistogramTable


def render_families(families: Sequence[Metric], tables: dict[str, list[Table]], openmetrics: bool) -> bytes:
    """Group tables by family (HELP/TYPE once each), skipping families with no series.

    Chunks are bytes joined once: building a str and encoding it would need a second buffer of the
    body's size, and fresh large buffers (page faults) cost more than the formatting itself.
    """
    parts: list[bytes] = []
    for metric in families:
        chunks = [t.render(openmetrics) for t in tables.get(metric.name, ()) if t.index]
        if chunks:
            parts.append(header(metric, openmetrics).encode())
            parts.extend(chunks)
    if openmetrics:
        parts.append(b"# EOF\n")
    return b"".join(parts)


PROCESS_MAX_AGE = 1.0  # seconds one reading of the process metrics is served again
_EOF = b"# EOF\n"


class ProcessMetrics:
    """The process's CPU time, memory, file descriptors and start time (``process_*``), as
    ``prometheus_client``'s ``ProcessCollector`` reads them from /proc (nothing elsewhere).

    Read at most once per ``max_age`` per format: listing /proc/self/fd costs with every open
    connection, and a flood of scrapes must not multiply it."""

    def __init__(self, max_age: float = PROCESS_MAX_AGE, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self._clock = clock
        self._registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self._registry)
        self._lock = threading.Lock()
        self._rendered: dict[bool, tuple[float, bytes]] = {}

    def render(self, openmetrics: bool) -> bytes:
        """HELP/TYPE and samples (OpenMetrics without its ``# EOF``), to append to an exposition."""
        with self._lock:
            now = self._clock()
            last = self._rendered.get(openmetrics)
            if last is None or now - last[0] >= self.max_age:
                body = (openmetrics_exposition if openmetrics else text_exposition)(self._registry)
                last = self._rendered[openmetrics] = (now, body.removesuffix(_EOF))
            return last[1]


PROCESS = ProcessMetrics()


def with_process_metrics(body: bytes, openmetrics: bool = False) -> bytes:
    """A whole exposition with this process's ``process_*`` metrics added (before OpenMetrics' ``# EOF``)."""
    if openmetrics:
        return body.removesuffix(_EOF) + PROCESS.render(True) + _EOF
    return body + PROCESS.render(False)
