"""Tenant-defined KPIs: a name, a type, a help text and at most three declared labels of their own.

They are exposed as the catalog's CUSTOM_KPI (gauges) or CUSTOM_KPI_COUNTER (counters) with the KPI
name as the ``kpi`` label, so dashboards and rules need no per-tenant metric names. Declared labels
keep cardinality bounded: at most ``MAX_LABELS`` names, ``MAX_LABEL_SETS`` label-value combinations
per KPI, short printable values; every series also counts against the tenant's series cap.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from tenantpulse.conventions import catalog
from tenantpulse.exporters.events import IngestError
from tenantpulse.exporters.exposition import Key, SeriesTable

KpiType = Literal["gauge", "counter"]

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
LABEL_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
LABEL_VALUE_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")
RESERVED_LABELS = frozenset({catalog.TENANT, catalog.KPI, "le", "quantile"})
MAX_LABELS = 3
MAX_LABEL_SETS = 100
MAX_HELP = 200
MAX_VALUE = 1e15  # per set/inc (documented in docs/exporter.md): keeps counter sums finite forever


@dataclass(frozen=True)
class KpiSpec:
    name: str
    type: KpiType
    help: str
    labels: tuple[str, ...]

    @property
    def metric(self) -> catalog.Metric:
        return catalog.CUSTOM_KPI_COUNTER if self.type == "counter" else catalog.CUSTOM_KPI


def make_spec(name: object, type: object, help: object, labels: object) -> KpiSpec:
    """Validate a registration; IngestError names the offending field."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise IngestError("name", f"KPI name must match {NAME_RE.pattern}")
    if type not in ("gauge", "counter"):
        raise IngestError("type", "must be 'gauge' or 'counter'")
    if not isinstance(help, str) or len(help) > MAX_HELP:
        raise IngestError("help", f"must be a string of at most {MAX_HELP} characters")
    if isinstance(labels, str) or not isinstance(labels, list | tuple):
        raise IngestError("labels", "must be a list of label names")
    if len(labels) > MAX_LABELS:
        raise IngestError("labels", f"at most {MAX_LABELS} labels per KPI")
    for i, label in enumerate(labels):
        if not isinstance(label, str) or not LABEL_NAME_RE.fullmatch(label) or label in RESERVED_LABELS:
            raise IngestError(
                f"labels[{i}]",
                f"must match {LABEL_NAME_RE.pattern} and not be one of {sorted(RESERVED_LABELS)}",
            )
    if len(set(labels)) != len(labels):
        raise IngestError("labels", "label names must be distinct")
    return KpiSpec(name, type, help, tuple(labels))


class Kpi:
    """One registered KPI of one tenant and its series."""

    __slots__ = ("spec", "table")

    def __init__(self, tenant: str, spec: KpiSpec) -> None:
        self.spec = spec
        self.table = SeriesTable(spec.metric, {catalog.TENANT: tenant, catalog.KPI: spec.name}, spec.labels)

    def key(self, labels: object) -> Key:
        """The label-value key for ``labels`` (must name exactly the declared labels)."""
        labels = {} if labels is None else labels
        if not isinstance(labels, dict) or set(labels) != set(self.spec.labels):
            raise IngestError(
                "labels", f"KPI {self.spec.name!r} takes exactly the labels {list(self.spec.labels)}"
            )
        for name in self.spec.labels:
            value = labels[name]
            if not isinstance(value, str) or not LABEL_VALUE_RE.fullmatch(value):
                raise IngestError(f"labels.{name}", "must be 1-128 printable characters")
        key = tuple(labels[n] for n in self.spec.labels)
        return key[0] if len(key) == 1 else key

    def is_new(self, key: Key) -> bool:
        if key in self.table.index:
            return False
        if len(self.table) >= MAX_LABEL_SETS:
            raise IngestError(
                "labels", f"label set limit reached ({MAX_LABEL_SETS}) for KPI {self.spec.name!r}"
            )
        return True

    def check_value(self, value: object, increment: bool) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise IngestError("value", "must be a finite number")
        # Compared before any float conversion, so a huge integer is refused instead of overflowing.
        if (isinstance(value, float) and not math.isfinite(value)) or not -MAX_VALUE <= value <= MAX_VALUE:
            raise IngestError("value", f"must be a finite number of at most {MAX_VALUE:g} in absolute value")
        if self.spec.type == "counter":
            if not increment:
                raise IngestError("value", f"KPI {self.spec.name!r} is a counter: use inc, not set")
            if value < 0:
                raise IngestError("value", "a counter can only increase (>= 0)")
        return float(value)
