"""Everything held for one tenant: its series tables, unique-user sketches and custom KPIs.

Series counted against the tenant's cap are its data series (events, durations, business figures,
unique users, KPIs); the exporter's own self-monitoring series about the tenant are not.
"""

from __future__ import annotations

from exporters import catalog as c
from exporters.exposition import HistogramTable, SeriesTable, Table
from exporters.kpis import Kpi
from exporters.sketches import UniqueUsers

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
)


class TenantState:
    """One tenant's tables; label keys are the label values after ``tenant``, in catalog order."""

    __slots__ = (
        "tenant",
        "events",
        "durations",
        "revenue",
        "active_users",
        "conversion",
        "unique",
        "users",
        "kpis",
        "rejected",
        "requests",
        "series_gauge",
    )

    def __init__(self, tenant: str) -> None:
        fixed = {c.TENANT: tenant}
        self.tenant = tenant
        self.events = SeriesTable(c.EVENTS, fixed)
        self.durations = HistogramTable(c.EVENT_DURATION, fixed)
        self.revenue = SeriesTable(c.REVENUE, fixed)
        self.active_users = SeriesTable(c.ACTIVE_USERS, fixed)
        self.conversion = SeriesTable(c.CONVERSION, fixed)
        self.unique = SeriesTable(c.UNIQUE_USERS, fixed)
        self.users = UniqueUsers()
        self.kpis: dict[str, Kpi] = {}
        self.rejected = SeriesTable(c.INGEST_REJECTED, fixed)
        self.requests = HistogramTable(c.INGEST_REQUEST_DURATION, fixed)
        self.series_gauge = SeriesTable(c.TENANT_SERIES, fixed)

    def series(self) -> int:
        """Data series held, the number checked against the tenant's cap."""
        data = (self.events, self.durations, self.revenue, self.active_users, self.conversion, self.unique)
        return sum(len(t) for t in data) + sum(len(k.table) for k in self.kpis.values())

    def tables(self) -> list[tuple[str, Table]]:
        """(family name, table) for every table of the tenant, in exposition order."""
        out: list[tuple[str, Table]] = [
            (c.EVENTS.name, self.events),
            (c.EVENT_DURATION.name, self.durations),
            (c.REVENUE.name, self.revenue),
            (c.ACTIVE_USERS.name, self.active_users),
            (c.CONVERSION.name, self.conversion),
            (c.UNIQUE_USERS.name, self.unique),
        ]
        out.extend((k.spec.metric.name, k.table) for k in self.kpis.values())
        out.extend(
            [
                (c.INGEST_REJECTED.name, self.rejected),
                (c.INGEST_REQUEST_DURATION.name, self.requests),
                (c.TENANT_SERIES.name, self.series_gauge),
            ]
        )
        return out
