"""Everything held for one tenant: its series tables, unique-user sketches and custom KPIs.

Series counted against the tenant's cap are its data series (events, durations, business figures,
unique users, KPIs); the exporter's own self-monitoring series about the tenant are not.
"""

from __future__ import annotations

from tenantpulse.conventions import catalog as c
from tenantpulse.exporters.exposition import HistogramTable, SeriesTable, Table
from tenantpulse.exporters.kpis import Kpi
from tenantpulse.exporters.sketches import UniqueUsers

# Exposition order of the families (HELP/TYPE written once each).
FAMILIES: tuple[c.Metric, ...] = (
    c.EVENTS,
    c.EVENT_DURATION,
    c.REVENUE,
    c.ACTIVE_USERS,
    c.CONVERSION,
    c.UNIQUE_USERS,
    c.CUSTOM_KPI,
    c.CUSTOM_KPI_COUNTER,
    c.INGEST_REJECTED,
    c.INGEST_REQUEST_DURATION,
    c.TENANT_SERIES,
    c.SYSTEM_CPU,
    c.SYSTEM_MEMORY,
    c.REDIS_UP,
)


SELF_MONITORING = frozenset({c.INGEST_REJECTED.name, c.INGEST_REQUEST_DURATION.name})


class TenantState:
    """One tenant's tables; label keys are the label values after ``tenant``, in catalog order.

    Only the event counters and the series gauge exist from the start; the other tables are made on
    first write (most tenants never use some of them, and an empty table still costs ~250 bytes).
    """

    __slots__ = ("tenant", "fixed", "events", "series_gauge", "users", "kpis", "_lazy", "_tables")

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.fixed = {c.TENANT: tenant}
        self.events = SeriesTable(c.EVENTS, self.fixed)
        self.series_gauge = SeriesTable(c.TENANT_SERIES, self.fixed)
        self.users = UniqueUsers()
        self.kpis: dict[str, Kpi] = {}
        self._lazy: dict[str, Table] = {}
        self._tables = self._build_tables()

    def _table(self, metric: c.Metric) -> Table:
        table = self._lazy.get(metric.name)
        if table is None:
            kind = HistogramTable if metric.type == "histogram" else SeriesTable
            table = self._lazy[metric.name] = kind(metric, self.fixed)
            self._tables = self._build_tables()
        return table

    def peek(self, metric: c.Metric) -> Table | None:
        """The table if it was ever written, without creating it (for reads)."""
        return self._lazy.get(metric.name)

    durations = property(lambda self: self._table(c.EVENT_DURATION))
    revenue = property(lambda self: self._table(c.REVENUE))
    active_users = property(lambda self: self._table(c.ACTIVE_USERS))
    conversion = property(lambda self: self._table(c.CONVERSION))
    unique = property(lambda self: self._table(c.UNIQUE_USERS))
    rejected = property(lambda self: self._table(c.INGEST_REJECTED))
    requests = property(lambda self: self._table(c.INGEST_REQUEST_DURATION))

    def series(self) -> int:
        """Data series held, the number checked against the tenant's cap (dict sizes: read per scrape)."""
        n = len(self.events.index)
        for name, table in self._lazy.items():
            if name not in SELF_MONITORING:
                n += len(table)
        if self.kpis:
            n += sum(len(k.table.index) for k in self.kpis.values())
        return n

    def add_kpi(self, kpi: Kpi) -> None:
        self.kpis[kpi.spec.name] = kpi
        self._tables = self._build_tables()

    def tables(self) -> list[tuple[str, Table]]:
        """(family name, table) for every table of the tenant, in exposition order."""
        return self._tables

    def _build_tables(self) -> list[tuple[str, Table]]:
        kpis: dict[str, list[Table]] = {}
        for k in self.kpis.values():
            kpis.setdefault(k.spec.metric.name, []).append(k.table)
        fixed = {c.EVENTS.name: self.events, c.TENANT_SERIES.name: self.series_gauge, **self._lazy}
        out: list[tuple[str, Table]] = []
        for metric in FAMILIES:
            if metric.name in fixed:
                out.append((metric.name, fixed[metric.name]))
            out.extend((metric.name, t) for t in kpis.get(metric.name, ()))
        return out
