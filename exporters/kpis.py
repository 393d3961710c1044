"""Tenant-defined KPIs: a name, a type, a help text and at most three declared labels of their own.

They are exposed as the catalog's CUSTOM_KPI (gauges) or CUSTOM_KPI_COUNTER (counters) with the KPI
name as the ``kpi`` label, so dashboards and rules need no per-tenant metric names. Declared labels
keep cardinality bounded: at most ``MAX_LABELS`` names, ``MAX_LABEL_SETS`` label-value combinations
per KPI, short printable values; every series also counts against the tenant's series cap.

``plan_writes`` checks a batch of values (``KpiWrite``, the HTTP API's items) against all of that before
the collector applies any of it. Reasons never repeat what the caller sent (names, label values).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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
MAX_WRITES = 500  # values per batch (POST /analytics/kpis): one batch fits the default rate-limit burst


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
            raise IngestError("labels", f"this KPI takes exactly the labels {list(self.spec.labels)}")
        for name in self.spec.labels:
            value = labels[name]
            if not isinstance(value, str) or not LABEL_VALUE_RE.fullmatch(value):
                raise IngestError(f"labels.{name}", "must be 1-128 printable characters")
        key = tuple(labels[n] for n in self.spec.labels)
        return key[0] if len(key) == 1 else key

    def is_new(self, key: Key, pending: int = 0) -> bool:
        """Whether ``key`` would be a new series; IngestError at the label-set cap (``pending``: new keys
        of this KPI already planned in the same batch)."""
        if key in self.table.index:
            return False
        if len(self.table) + pending >= MAX_LABEL_SETS:
            raise IngestError("labels", f"label set limit reached ({MAX_LABEL_SETS}) for this KPI")
        return True

    def check_value(self, value: object, increment: bool) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise IngestError("value", "must be a finite number")
        # Compared before any float conversion, so a huge integer is refused instead of overflowing.
        if (isinstance(value, float) and not math.isfinite(value)) or not -MAX_VALUE <= value <= MAX_VALUE:
            raise IngestError("value", f"must be a finite number of at most {MAX_VALUE:g} in absolute value")
        if self.spec.type == "counter":
            if not increment:
                raise IngestError("value", "this KPI is a counter: use inc, not set")
            if value < 0:
                raise IngestError("value", "a counter can only increase (>= 0)")
        return float(value)


@dataclass(frozen=True)
class KpiWrite:
    """One value of a batch. The first value of an unknown KPI declares it: ``type`` (default gauge),
    ``help`` and the names of its ``labels``. ``op`` defaults to ``set`` for a gauge, ``inc`` for a counter."""

    name: str
    value: object
    labels: dict[str, Any] = field(default_factory=dict)
    op: Literal["set", "inc"] | None = None
    type: KpiType | None = None
    help: str | None = None


Update = tuple[Kpi, Key, float, bool]  # the KPI, its label key, the value, whether it is an increment


def plan_writes(
    tenant: str,
    kpis: Mapping[str, Kpi],
    series: int,
    writes: Sequence[KpiWrite],
    max_kpis: int,
    max_series: int,
) -> tuple[list[Kpi], list[Update]]:
    """Check ``writes`` against the tenant's ``kpis`` and caps (``series`` held now); changes nothing.

    Returns the KPIs to declare and the updates in order, or raises IngestError naming
    ``values[i].<field>``, so a batch is applied whole or not at all."""
    declared: dict[str, Kpi] = {}
    fresh: dict[str, set[Key]] = {}
    updates: list[Update] = []
    for i, write in enumerate(writes):
        try:
            kpi = kpis.get(write.name) or declared.get(write.name)
            if kpi is None:
                if len(kpis) + len(declared) >= max_kpis:
                    raise IngestError("name", f"KPI limit reached ({max_kpis})")
                kpi = declared[write.name] = Kpi(tenant, _declaration(write))
            else:
                _check_declaration(kpi.spec, write)
            increment = (write.op or ("inc" if kpi.spec.type == "counter" else "set")) == "inc"
            if kpi.spec.type == "counter" and not increment:
                raise IngestError("op", "this KPI is a counter: use inc")
            key = kpi.key(write.labels)
            value = kpi.check_value(write.value, increment)
            pending = fresh.setdefault(write.name, set())
            if key not in pending and kpi.is_new(key, len(pending)):
                if series + sum(map(len, fresh.values())) + 1 > max_series:
                    raise IngestError("labels", f"series limit reached ({max_series})")
                pending.add(key)
            updates.append((kpi, key, value, increment))
        except IngestError as exc:
            raise IngestError(f"values[{i}].{exc.field}", exc.reason, exc.status) from None
    return list(declared.values()), updates


def _declaration(write: KpiWrite) -> KpiSpec:
    try:
        return make_spec(write.name, write.type or "gauge", write.help or "", list(write.labels))
    except IngestError as exc:  # ``labels[i]`` is an index into the names: in a JSON object, ``labels``
        where = "labels" if exc.field.startswith("labels") else exc.field
        raise IngestError(where, exc.reason, exc.status) from None


def _check_declaration(spec: KpiSpec, write: KpiWrite) -> None:
    """A later value may repeat the declaration, not change it (as ``register_kpi``)."""
    if write.type is not None and write.type != spec.type:
        raise IngestError("type", f"this KPI is declared as a {spec.type}")
    if write.help is not None and write.help != spec.help:
        raise IngestError("help", "this KPI is declared with another help text")


def describe(kpis: Mapping[str, Kpi]) -> dict[str, dict[str, Any]]:
    """A tenant's KPIs as plain data: declaration and the current value of each label set."""
    return {
        name: {
            "type": k.spec.type,
            "help": k.spec.help,
            "labels": list(k.spec.labels),
            "values": [
                {
                    "labels": dict(zip(k.spec.labels, (key,) if isinstance(key, str) else key, strict=True)),
                    "value": v,
                }
                for key, v in k.table.items()
            ],
        }
        for name, k in kpis.items()
    }
