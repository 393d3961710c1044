"""MetricsCollector: the exporter's Python API (the HTTP layer and in-process callers use it).

A batch is validated whole against the current state (ids, charsets, numbers, caps) before anything
is applied, under one lock that also guards rendering, so a refused batch leaves no trace and a scrape
never sees half a batch. ``user_id`` only ever exists here as an HMAC pseudonym fed to HLL sketches.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import re
import secrets
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tenantpulse.conventions import catalog as c
from tenantpulse.exporters.events import AppEvent, BusinessFigures, Event, IngestError
from tenantpulse.exporters.exposition import (
    Exemplar,
    HistogramTable,
    SeriesTable,
    Table,
    histogram_series,
    render_exemplar,
    render_families,
)
from tenantpulse.exporters.kpis import Kpi, KpiWrite, describe, make_spec, plan_writes
from tenantpulse.exporters.pseudonym import Pseudonymizer, key_id
from tenantpulse.exporters.redis_counters import COUNTER_FAMILIES, Delta, delta
from tenantpulse.exporters.redis_counters import tables as counter_tables
from tenantpulse.exporters.shared_state import SharedStateUnavailable, Stale, TenantWork
from tenantpulse.exporters.sketches import LONGEST, WINDOWS
from tenantpulse.exporters.store import FAMILIES, TenantState
from tenantpulse.exporters.system import read_host
from tenantpulse.otel.exemplars import current_exemplar

if TYPE_CHECKING:
    from tenantpulse.exporters.redis_state import RedisTenantState

EVENT_TYPE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$")
REASON_RE = re.compile(r"^[a-z0-9_]{1,32}$")
DURATION_FIELDS = {"duration_seconds": 1.0, "duration_ms": 0.001}  # field -> factor to seconds
INVALID_TENANT = "_invalid"  # label for self-monitoring of requests whose tenant id is not valid
MAX_REASONS = 20  # distinct rejection reasons per tenant; more are counted as "other"
MAX_EXEMPLAR_CHARS = 128  # OpenMetrics limit on an exemplar's label set
MAX_KPIS = 20
# Per-value maxima (documented in docs/exporter.md). Chosen so that no sum the exporter keeps can leave
# the float range: even 2**63 values at the maximum add up to < 1e35, far below the ~1.8e308 limit.
MAX_DURATION_SECONDS = 31_536_000.0  # one year (duration_ms: 3.1536e10)
MAX_REVENUE = 1e15  # per business object
MAX_ACTIVE_USERS = 1e12
SHARED_ATTEMPTS = 3  # plans of one batch when erasures of its tenants keep coming in between
DEFAULT_ALLOWLIST = {"*": frozenset(DURATION_FIELDS)}

_LIVE: weakref.WeakSet[MetricsCollector] = weakref.WeakSet()


@atexit.register
def _release_sketches() -> None:
    """Free the HLL sketches before interpreter teardown.

    DataSketches' binding (nanobind) prints a "leaked instance" report for every sketch still alive
    at shutdown, which a collector held by a server thread always is; freeing them first keeps
    process exits quiet.
    """
    for collector in list(_LIVE):
        for state in collector._tenants.values():
            state.users.by_version.clear()


@dataclass
class CollectorConfig:
    """Collector settings; without keys, a random per-process key is used (sketches are in memory)."""

    pseudonym_keys: dict[str, bytes] = field(default_factory=lambda: {"ephemeral": secrets.token_bytes(32)})
    pseudonym_key_current: str | None = None  # None: the only key given
    max_series_per_tenant: int = 10_000
    max_event_types_per_tenant: int = 50
    max_kpis_per_tenant: int = MAX_KPIS
    metadata_allowlist: dict[str, set[str] | frozenset[str]] = field(
        default_factory=lambda: dict(DEFAULT_ALLOWLIST)
    )
    max_user_id_length: int = 256
    clock: Callable[[], float] = time.time

    def current_key(self) -> str:
        if self.pseudonym_key_current is not None:
            return self.pseudonym_key_current
        if len(self.pseudonym_keys) != 1:
            raise ValueError("pseudonym_key_current must name one of several pseudonym_keys")
        return next(iter(self.pseudonym_keys))


def _number(value: object, field: str, low: float = 0.0, high: float = math.inf) -> float:
    """``value`` as a float in ``[low, high]``; integers too large for a float are refused, not raised."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IngestError(field, "must be a number")
    # Compared before any float conversion: Python compares a huge int with a float exactly.
    if (isinstance(value, float) and not math.isfinite(value)) or not low <= value <= high:
        bounds = f"of at least {low:g} and at most {high:g}" if math.isfinite(high) else f">= {low:g}"
        raise IngestError(field, f"must be a finite number {bounds}")
    try:
        return float(value)
    except OverflowError:  # only reachable with high=inf
        raise IngestError(field, "must be a finite number (too large)") from None


def _tenant(value: object, field: str) -> str:
    if not isinstance(value, str) or not c.TENANT_ID_RE.fullmatch(value):
        raise IngestError(field, f"must match {c.TENANT_ID_PATTERN}")
    return value


class _Reservations:
    """What a batch being planned would add per tenant (series, event types), checked against caps.

    ``types`` and ``series`` list the additions in batch order with the field each came from: with
    shared state, the same caps are then checked across replicas (``TenantWork``)."""

    def __init__(self, tenants: dict[str, TenantState], config: CollectorConfig) -> None:
        self.tenants = tenants
        self.config = config
        self.added: dict[str, int] = {}
        self.new_types: dict[str, set[str]] = {}
        self.types: dict[str, list[tuple[str, str]]] = {}
        self.series: dict[str, list[tuple[str, int, str]]] = {}

    def grow(self, tenant: str, n: int, field: str, item: str) -> None:
        """Reserve ``n`` new series (``item`` names them) for the batch being planned, or refuse it at
        the tenant's cap."""
        cap = self.config.max_series_per_tenant
        state = self.tenants.get(tenant)
        total = (state.series() if state else 0) + self.added.get(tenant, 0) + n
        if total > cap:
            raise IngestError(field, f"series limit reached ({cap})")
        self.added[tenant] = self.added.get(tenant, 0) + n
        self.series.setdefault(tenant, []).append((item, n, field))

    def check_pair(self, tenant: object, event_type: object, i: int) -> None:
        """First sight of (tenant, event type) in this batch: ids, and the caps if the pair is new."""
        state = self.tenants.get(tenant) if isinstance(tenant, str) else None
        if state is not None and event_type in state.events.index:
            return  # accepted before, hence valid
        tenant_id = _tenant(tenant, f"events[{i}].tenant_id")
        if not isinstance(event_type, str) or not EVENT_TYPE_RE.fullmatch(event_type):
            raise IngestError(f"events[{i}].event_type", f"must match {EVENT_TYPE_RE.pattern}")
        fresh = self.new_types.setdefault(tenant_id, set())
        limit = self.config.max_event_types_per_tenant
        if (len(state.events) if state else 0) + len(fresh) >= limit:
            raise IngestError(f"events[{i}].event_type", f"event type limit reached ({limit})")
        self.grow(tenant_id, 1, f"events[{i}].event_type", f"e:{event_type}")
        fresh.add(event_type)
        self.types.setdefault(tenant_id, []).append((event_type, f"events[{i}].event_type"))


class MetricsCollector:
    """Per-tenant application, business and custom metrics, rendered fast for Prometheus.

    With ``shared`` (Redis, several replicas) unique users, last-value gauges and the caps live in the
    shared state, and the counters (events, durations, revenue) too: a batch is planned here, recorded
    there (outside the lock), its counts committed to the ingest stream (``redis_stream``), and only
    then applied here, where it serves the next batches' checks; the counters exposed and read are the
    shared ones, applied from the stream (``stream_worker``) and exposed by one replica (``exposing``).
    """

    def __init__(self, config: CollectorConfig | None = None, shared: RedisTenantState | None = None) -> None:
        self.config = config or CollectorConfig()
        self.shared = shared
        self._generations: dict[str, int] = {}  # tenant -> erasure generation last seen in the shared state
        self._shared_series: dict[str, int] = {}  # tenant -> series in the shared ledger, last read
        self._redis_up = SeriesTable(c.REDIS_UP, {})
        self.exposing: Callable[[], bool] = lambda: True  # with shared state: the worker's lease
        self._clock = self.config.clock
        self._pseudo = Pseudonymizer(self.config.pseudonym_keys, self.config.current_key(), LONGEST)
        allow = {k: frozenset(v) for k, v in self.config.metadata_allowlist.items()}
        default = allow.pop("*", frozenset())
        self._default_duration_fields = tuple(
            (f, k, MAX_DURATION_SECONDS / k) for f, k in DURATION_FIELDS.items() if f in default
        )
        self._duration_fields = {
            et: tuple((f, k, MAX_DURATION_SECONDS / k) for f, k in DURATION_FIELDS.items() if f in fields)
            for et, fields in allow.items()
        }
        self._lock = threading.Lock()
        self._tenants: dict[str, TenantState] = {}
        self._invalid_rejected = SeriesTable(c.INGEST_REJECTED, {})
        self._invalid_requests = HistogramTable(c.INGEST_REQUEST_DURATION, {})
        self._system = (SeriesTable(c.SYSTEM_CPU, {}), SeriesTable(c.SYSTEM_MEMORY, {}))
        _LIVE.add(self)

    # --- seed-compatible async API -----------------------------------------------------------------

    async def collect_app_metrics(
        self, tenant_id: str, user_id: str | None, event_type: str, metadata: dict[str, Any] | None = None
    ) -> None:
        self.ingest([AppEvent(tenant_id, user_id, event_type, metadata or {})], [])

    async def collect_business_metrics(
        self,
        tenant_id: str,
        revenue: float | None = None,
        active_users: float | None = None,
        conversion_rate: float | None = None,
    ) -> None:
        self.ingest([], [BusinessFigures(tenant_id, revenue, active_users, conversion_rate)])

    async def collect_system_metrics(self) -> None:
        cpu, memory = read_host()
        with self._lock:
            self._system[0].set((), cpu)
            self._system[1].set((), memory)

    # --- batch ingest ------------------------------------------------------------------------------

    def ingest(
        self,
        events: Sequence[Event],
        business: Sequence[BusinessFigures] = (),
        commit: Callable[[Delta], object] | None = None,
    ) -> int:
        """Validate the whole batch, then apply all of it; IngestError (nothing applied) otherwise, and
        with shared state SharedStateUnavailable (nothing applied either). With shared state,
        ``commit`` takes the batch's counts once the shared state took the rest (default: append them
        to the ingest stream); what it raises reaches the caller and nothing is applied here."""
        if self.shared is not None:
            self._ingest_shared(events, business, commit or self._append)
            return len(events) + len(business)
        with self._lock:
            counts, durations, users, figures, _ = self._plan(events, business)
            self._apply(counts, durations, users, figures)
        return len(events) + len(business)

    def _append(self, change: Delta) -> None:
        assert self.shared is not None
        self.shared.stream.append(json.dumps(change), None, "")

    def _ingest_shared(
        self,
        events: Sequence[Event],
        business: Sequence[BusinessFigures],
        commit: Callable[[Delta], object],
    ) -> None:
        assert self.shared is not None
        for _ in range(SHARED_ATTEMPTS):
            with self._lock:
                counts, durations, users, figures, caps = self._plan(events, business)
                works = self._works(counts, users, figures, caps)
                versions = [(key_id(v.key), v.key) for v in self._pseudo.active(self._clock())]
            for work in works:  # HMAC outside the lock
                ids = users.get(work.tenant)
                if ids:
                    work.users = {kid: Pseudonymizer.digests(key, ids) for kid, key in versions}
            try:
                recorded = self.shared.record(works, self._clock())
            except Stale as exc:
                with self._lock:
                    self._drop(exc.tenant, exc.generation)
                continue
            commit(delta(counts, durations, [(f[0], f[1]) for f in figures if f[1] is not None]))
            with self._lock:
                for t, (generation, series) in recorded.items():
                    self._generations[t] = max(generation, self._generations.get(t, generation))
                    self._shared_series[t] = series
                self._apply(counts, durations, {}, figures)
                for t in users:
                    for w in WINDOWS:
                        self._state(t).unique.slot(w.label)
            return
        raise SharedStateUnavailable("tenants erased again while the batch was planned")

    def _works(
        self, counts: dict, users: dict[str, set[str]], figures: list, caps: _Reservations
    ) -> list[TenantWork]:
        """Each tenant's share of a planned batch for the shared state (users are added after)."""
        tenants = dict.fromkeys([t for t, _ in counts] + list(users) + [f[0] for f in figures])
        works = {
            t: TenantWork(t, self._generations.get(t, -1), caps.types.get(t, []), caps.series.get(t, []))
            for t in tenants
        }
        for t, _, active, conversion in figures:
            if active is not None:
                works[t].gauges["active_users"] = active
            if conversion is not None:
                works[t].gauges["conversion_rate"] = conversion
        return list(works.values())

    def _drop(self, tenant: str, generation: int) -> None:
        """Forget a tenant erased from the shared state by another replica (lock held)."""
        self._tenants.pop(tenant, None)
        self._shared_series.pop(tenant, None)
        self._generations[tenant] = generation

    def _plan(self, events: Sequence[Event], business: Sequence[BusinessFigures]) -> tuple:
        """Check everything and group the work; touches no state.

        The per-event loop is the hot path: a (tenant, event type) pair already held by the tenant
        was validated when it was first accepted, so only new pairs go through the full checks.
        """
        tenants = self._tenants
        counts: dict[tuple[str, str], int] = {}
        durations: dict[tuple[str, str], list[float]] = {}
        users: dict[str, set[str]] = {}
        caps = _Reservations(tenants, self.config)
        fields_for = self._duration_fields.get
        default_fields = self._default_duration_fields
        max_user = self.config.max_user_id_length

        for i, e in enumerate(events):
            t, et = e.tenant_id, e.event_type
            key = (t, et)
            try:
                n = counts.get(key)
            except TypeError:  # an unhashable id: only possible from callers that skip the HTTP schema
                _tenant(t, f"events[{i}].tenant_id")
                raise IngestError(f"events[{i}].event_type", "must be a string") from None
            if n is None:
                caps.check_pair(t, et, i)
                counts[key] = 1
            else:
                counts[key] = n + 1
            u = e.user_id
            if u is not None:
                if type(u) is not str or not u or len(u) > max_user:
                    raise IngestError(
                        f"events[{i}].user_id", f"must be a non-empty string of at most {max_user} chars"
                    )
                seen = users.get(t)
                if seen is None:
                    seen = users[t] = set()
                    state = tenants.get(t)
                    if state is None or state.peek(c.UNIQUE_USERS) is None:
                        caps.grow(t, len(WINDOWS), f"events[{i}].user_id", "u")
                seen.add(u)
            md = e.metadata
            if md:
                if not isinstance(md, dict):
                    raise IngestError(f"events[{i}].metadata", "must be an object")
                seconds = None
                for name, factor, high in fields_for(et, default_fields):
                    v = md.get(name)
                    if v is None:
                        continue
                    if (type(v) is not float and type(v) is not int) or not 0.0 <= v <= high:
                        _number(v, f"events[{i}].metadata.{name}", 0.0, high)  # raises with the reason
                    if seconds is None:
                        seconds = v * factor
                if seconds is not None:
                    values = durations.get(key)
                    if values is None:
                        values = durations[key] = []
                        state = tenants.get(t)
                        hist = state.peek(c.EVENT_DURATION) if state else None
                        if hist is None or et not in hist.index:
                            caps.grow(
                                t, histogram_series(c.EVENT_DURATION), f"events[{i}].metadata", f"d:{et}"
                            )
                    values.append(seconds)

        figures: list[tuple[str, float | None, float | None, float | None]] = []
        new_gauges: set[tuple[str, str]] = set()
        for i, b in enumerate(business):
            t = _tenant(b.tenant_id, f"business[{i}].tenant_id")
            state = tenants.get(t)
            row: list[float | None] = []  # revenue, active users, conversion rate
            for name, high, metric in (
                ("revenue", MAX_REVENUE, c.REVENUE),
                ("active_users", MAX_ACTIVE_USERS, c.ACTIVE_USERS),
                ("conversion_rate", 1.0, c.CONVERSION),
            ):
                value = getattr(b, name)
                if value is None:
                    row.append(None)
                    continue
                row.append(_number(value, f"business[{i}].{name}", 0.0, high))
                if (state is None or state.peek(metric) is None) and (t, name) not in new_gauges:
                    caps.grow(t, 1, f"business[{i}].{name}", f"b:{name}")
                    new_gauges.add((t, name))
            figures.append((t, row[0], row[1], row[2]))
        return counts, durations, users, figures, caps

    def _state(self, tenant: str) -> TenantState:
        state = self._tenants.get(tenant)
        if state is None:
            state = self._tenants[tenant] = TenantState(tenant)
        return state

    def _apply(self, counts: dict, durations: dict, users: dict, figures: list) -> None:
        for (t, et), n in counts.items():
            self._state(t).events.add(sys.intern(et), n)
        if durations:
            exemplar = self._exemplar(current_exemplar(), None)
            for (t, et), values in durations.items():
                self._state(t).durations.observe_many(sys.intern(et), values, exemplar)
        if users:
            now = self._clock()
            versions = self._pseudo.active(now)
            for t, ids in users.items():
                state = self._state(t)
                state.users.retain(v.version for v in versions)
                for v in versions:
                    state.users.update(v.version, Pseudonymizer.pseudonyms(v.key, ids), now)
                for w in WINDOWS:
                    state.unique.slot(w.label)
        for t, revenue, active, conversion in figures:
            state = self._state(t)
            if revenue is not None:
                state.revenue.add((), revenue)
            if active is not None:
                state.active_users.set((), active)
            if conversion is not None:
                state.conversion.set((), conversion)

    def rotate_pseudonym_key(self, version: str, key: bytes) -> None:
        """Switch to a new HMAC key; the old one keeps feeding sketches for the longest window."""
        with self._lock:
            self._pseudo.rotate(version, key, self._clock())

    # --- self-monitoring ----------------------------------------------------------------------------

    def _exemplar(self, labels: dict[str, str] | None, value: float | None) -> Exemplar | None:
        if not labels:
            return None
        exemplar = render_exemplar({str(k): str(v) for k, v in labels.items()}, value or 0.0, self._clock())
        return exemplar if len(exemplar[0]) - 2 <= MAX_EXEMPLAR_CHARS else None

    def observe_request(self, tenant: str, seconds: float, exemplar: dict[str, str] | None = None) -> None:
        """Record one ingest request's duration; the exemplar (trace ids) goes on its bucket."""
        seconds = max(0.0, float(seconds)) if math.isfinite(seconds) else 0.0
        with self._lock:
            ex = self._exemplar(exemplar, seconds)
            if isinstance(tenant, str) and c.TENANT_ID_RE.fullmatch(tenant):
                self._state(tenant).requests.observe((), seconds, ex)
            else:
                self._invalid_requests.observe((INVALID_TENANT,), seconds, ex)

    def count_rejected(self, tenant: str, reason: str) -> None:
        """Count a refused request; reasons outside ``[a-z0-9_]{1,32}`` or past 20 per tenant are "other"."""
        reason = reason if isinstance(reason, str) and REASON_RE.fullmatch(reason) else "other"
        with self._lock:
            if isinstance(tenant, str) and c.TENANT_ID_RE.fullmatch(tenant):
                table = self._state(tenant).rejected
                if reason not in table.index and len(table) >= MAX_REASONS:
                    reason = "other"
                table.add(reason, 1)
            else:
                table = self._invalid_rejected
                if (INVALID_TENANT, reason) not in table.index and len(table) >= MAX_REASONS:
                    reason = "other"
                table.add((INVALID_TENANT, reason), 1)

    # --- custom KPIs --------------------------------------------------------------------------------

    def register_kpi(
        self, tenant: str, name: str, type: str = "gauge", help: str = "", labels: Sequence[str] = ()
    ) -> None:
        """Declare a KPI; registering the same declaration again is a no-op, a different one an error."""
        _tenant(tenant, "tenant")
        spec = make_spec(name, type, help, list(labels) if isinstance(labels, list | tuple) else labels)
        with self._lock:
            state = self._tenants.get(tenant)
            existing = state.kpis.get(name) if state else None
            if existing is not None:
                if existing.spec != spec:
                    raise IngestError("name", "this KPI is already registered with another declaration")
                return
            if state is not None and len(state.kpis) >= self.config.max_kpis_per_tenant:
                raise IngestError("name", f"KPI limit reached ({self.config.max_kpis_per_tenant})")
            self._state(tenant).add_kpi(Kpi(tenant, spec))

    def set_kpi(self, tenant: str, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        self._update_kpi(tenant, name, value, labels, increment=False)

    def inc_kpi(
        self, tenant: str, name: str, amount: float = 1.0, labels: dict[str, str] | None = None
    ) -> None:
        self._update_kpi(tenant, name, amount, labels, increment=True)

    def _update_kpi(self, tenant: str, name: str, value: float, labels: object, increment: bool) -> None:
        _tenant(tenant, "tenant")
        with self._lock:
            state = self._tenants.get(tenant)
            kpi = state.kpis.get(name) if state else None
            if state is None or kpi is None:
                raise IngestError("kpi", "no KPI of this name for this tenant: register it first")
            key = kpi.key(labels)
            value = kpi.check_value(value, increment)
            if kpi.is_new(key) and state.series() + 1 > self.config.max_series_per_tenant:
                raise IngestError("labels", f"series limit reached ({self.config.max_series_per_tenant})")
            if increment:
                kpi.table.add(key, value)
            else:
                kpi.table.set(key, value)

    def record_kpis(self, tenant: str, writes: Sequence[KpiWrite]) -> list[str]:
        """Apply a batch of KPI writes (``kpis.plan_writes``) to ``tenant``, all or none (IngestError):
        planned against the tenant's KPIs and caps and applied under the lock batch ingest takes, so a
        read never sees half a batch. Returns the names the batch declared."""
        _tenant(tenant, "tenant")
        with self._lock:
            state = self._tenants.get(tenant)
            new, updates = plan_writes(
                tenant,
                state.kpis if state else {},
                state.series() if state else 0,
                writes,
                self.config.max_kpis_per_tenant,
                self.config.max_series_per_tenant,
            )
            state = self._state(tenant)
            for kpi in new:
                state.add_kpi(kpi)
            for kpi, label_key, value, increment in updates:
                (kpi.table.add if increment else kpi.table.set)(label_key, value)
        return [kpi.spec.name for kpi in new]

    def describe_kpis(self, tenant: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
        """Tenant -> its KPIs (``kpis.describe``), of one tenant or of all (None)."""
        with self._lock:
            if tenant is None:
                states = list(self._tenants.values())
            else:
                states = [self._tenants[tenant]] if tenant in self._tenants else []
            return {s.tenant: describe(s.kpis) for s in states if s.kpis}

    # --- reading ------------------------------------------------------------------------------------

    def _refresh(self, states: Sequence[TenantState]) -> None:
        """Fill the gauges computed at read time: unique-user estimates and series counts."""
        now = self._clock()
        versions = self._pseudo.active(now)
        spans = [(v.version, v.since) for v in versions]
        for state in states:
            if state.users.by_version:
                state.users.retain(v for v, _ in spans)
                for label, value in state.users.estimates(spans, now).items():
                    state.unique.set(label, value)
            state.series_gauge.set((), self._series(state))

    def _series(self, state: TenantState) -> int:
        """Series checked against the tenant's cap: with shared state, the shared ledger's (all
        replicas' events, durations, business figures, unique users) plus this replica's KPI series."""
        shared = self._shared_series.get(state.tenant)
        if shared is None:
            return state.series()
        return shared + sum(len(k.table.index) for k in state.kpis.values())

    def _pull(self, tenant: str | None = None) -> None:
        """Before a read, the shared values (unique users, gauges, series) into the local tables, and
        drop tenants erased elsewhere; without Redis the last values stay (``redis_up`` 0)."""
        if self.shared is None:
            return
        with self._lock:
            names = sorted(self._tenants) if tenant is None else [t for t in (tenant,) if t in self._tenants]
            now = self._clock()
            spans = [(key_id(v.key), v.since) for v in self._pseudo.active(now)]
        try:
            readings = self.shared.read(names, spans, now)
        except SharedStateUnavailable:
            return
        with self._lock:
            for t, reading in readings.items():
                known = self._generations.get(t, reading.generation)
                if reading.generation > known:
                    self._drop(t, reading.generation)
                    continue
                self._generations[t] = known
                state = self._tenants.get(t)
                if state is None:
                    continue
                self._shared_series[t] = reading.series
                if state.peek(c.UNIQUE_USERS) is not None or any(reading.unique.values()):
                    for label, value in reading.unique.items():
                        state.unique.set(label, value)
                for name, value in reading.gauges.items():
                    (state.active_users if name == "active_users" else state.conversion).set((), value)

    def _counters(self, tenants: Sequence[str] | None) -> dict[str, dict[str, Table]] | None:
        """The shared counters as tables, per tenant, of ``tenants`` (None: all of them); None in the
        embedded default, nothing while Redis is unreachable (the series pause rather than lie)."""
        if self.shared is None:
            return None
        try:
            names = sorted(self.shared.counters.tenants()) if tenants is None else list(tenants)
            read = self.shared.counters.read(names)
        except SharedStateUnavailable:
            return {}
        return {t: counter_tables(t, fields) for t, fields in read.items()}

    def render(self, tenant: str | None = None, openmetrics: bool = False) -> bytes:
        """The /metrics body for all tenants (plus host metrics) or for one tenant.

        With shared state the counters come from Redis: in the whole exposition only from the replica
        holding the exposer lease (so a sum over replicas counts each event once), in one tenant's
        from every replica (a read of that tenant's totals)."""
        self._pull(tenant)
        if tenant is None:
            counted = self._counters(None) if self.exposing() else ({} if self.shared else None)
        else:
            counted = self._counters([tenant])
        with self._lock:
            if tenant is None:
                states = list(self._tenants.values())
            else:
                states = [self._tenants[tenant]] if tenant in self._tenants else []
            self._refresh(states)
            tables: dict[str, list[Table]] = {}
            for state in states:
                for family, table in state.tables():
                    if table.index and (counted is None or family not in COUNTER_FAMILIES):
                        tables.setdefault(family, []).append(table)
            for t in sorted(counted or ()):
                for family, table in counted[t].items():  # type: ignore[index]
                    tables.setdefault(family, []).append(table)
            if tenant is None:
                tables.setdefault(c.INGEST_REJECTED.name, []).append(self._invalid_rejected)
                tables.setdefault(c.INGEST_REQUEST_DURATION.name, []).append(self._invalid_requests)
                for table in self._system:
                    tables[table.metric.name] = [table]
                if self.shared is not None:
                    self._redis_up.set((), int(self.shared.up))
                    tables[c.REDIS_UP.name] = [self._redis_up]
            return render_families(FAMILIES, tables, openmetrics)

    def tenants(self) -> list[str]:
        """Tenants with data here, and with shared state those with shared counters."""
        with self._lock:
            known = set(self._tenants)
        if self.shared is not None:
            with contextlib.suppress(SharedStateUnavailable):
                known |= self.shared.counters.tenants()
        return sorted(known)

    def snapshot(self, tenant: str) -> dict[str, Any]:
        """The tenant's current values as plain JSON data; KeyError if nothing is known about it."""
        self._pull(tenant)
        counted = self._counters([tenant])
        with self._lock:
            state = self._tenants.get(tenant)
            if state is None:
                if not counted:
                    raise KeyError(tenant)
                state = TenantState(tenant)  # seen by other replicas only: its counters, nothing else
            self._refresh([state])
            return self._snapshot(state, None if counted is None else counted.get(tenant, {}))

    def _snapshot(self, state: TenantState, counted: dict[str, Table] | None = None) -> dict[str, Any]:
        """``counted``: the shared counters' tables, which then stand for the local ones."""

        def table(metric: c.Metric) -> Table | None:
            if counted is not None and metric.name in COUNTER_FAMILIES:
                return counted.get(metric.name)
            return state.events if metric is c.EVENTS else state.peek(metric)

        durations = {}
        # A family's table kind follows its metric type (TenantState._table): the isinstance checks
        # only tell mypy so.
        hist = table(c.EVENT_DURATION)
        if isinstance(hist, HistogramTable):
            for et in hist.index:
                count, total = hist.count_and_sum(et) or (0.0, 0.0)
                durations[et] = {"count": count, "sum_seconds": total}

        def value(metric: c.Metric) -> float | None:
            found = table(metric)
            return found.get(()) if isinstance(found, SeriesTable) and found else None

        unique = state.peek(c.UNIQUE_USERS)
        kpis = {
            name: {
                "type": k.spec.type,
                "help": k.spec.help,
                "labels": list(k.spec.labels),
                "values": [
                    {
                        "labels": dict(
                            zip(k.spec.labels, (key,) if isinstance(key, str) else key, strict=True)
                        ),
                        "value": v,
                    }
                    for key, v in k.table.items()
                ],
            }
            for name, k in state.kpis.items()
        }
        return {
            "tenant": state.tenant,
            "events": dict(events.items()) if isinstance(events := table(c.EVENTS), SeriesTable) else {},
            "event_durations": durations,
            "revenue": value(c.REVENUE),
            "active_users": value(c.ACTIVE_USERS),
            "conversion_rate": value(c.CONVERSION),
            "unique_users": dict(unique.items()) if isinstance(unique, SeriesTable) and unique else {},
            "kpis": kpis,
            "series": self._series(state),
        }

    def aggregated(self) -> dict[str, Any]:
        """Sums across tenants (unique users add up: tenants' user sets are pseudonymised apart)."""
        if self.shared is not None:
            snaps = []
            for t in self.tenants():
                try:
                    snaps.append(self.snapshot(t))
                except KeyError:  # erased meanwhile
                    continue
        else:
            with self._lock:
                states = list(self._tenants.values())
                self._refresh(states)
                snaps = [self._snapshot(s) for s in states]
        events: dict[str, float] = {}
        unique: dict[str, float] = {}
        for snap in snaps:
            for et, v in snap["events"].items():
                events[et] = events.get(et, 0.0) + v
            for w, v in snap["unique_users"].items():
                unique[w] = unique.get(w, 0.0) + v
        return {
            "tenants": len(snaps),
            "events": events,
            "events_total": sum(events.values()),
            "revenue": sum(s["revenue"] or 0.0 for s in snaps),
            "active_users": sum(s["active_users"] or 0.0 for s in snaps),
            "unique_users": unique,
            "series": sum(s["series"] for s in snaps),
        }

    def remove_tenant(self, tenant: str) -> dict[str, Any]:
        """Erase everything held for the tenant (right to erasure); reports what was removed."""
        with self._lock:
            state = self._tenants.pop(tenant, None)
            self._shared_series.pop(tenant, None)
        if state is None:
            return {"tenant": tenant, "removed": False, "series": 0, "sketches": 0, "kpis": 0}
        return {
            "tenant": tenant,
            "removed": True,
            "series": state.series(),
            "sketches": state.users.sketch_count(),
            "kpis": len(state.kpis),
        }

    def erase_shared(self, tenant: str) -> dict[str, Any] | None:
        """Erase the tenant from the state the replicas share (None in the embedded default): its keys
        go, and every replica drops its in-memory copy at its next read or ingest of the tenant.
        Raises SharedStateUnavailable."""
        if self.shared is None:
            return None
        erased = self.shared.erase(tenant)
        with self._lock:
            self._drop(tenant, erased["generation"])
        return erased
