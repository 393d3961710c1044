"""Live: a tenant with its own objective pages at a burn rate that leaves the other tenants quiet.

Both tenants send the same 5% of errors to a real exporter scraped by a real Prometheus that runs the
generated rules. Against the SLO's 99% (budget 1%) that is 5x the budget rate, under the 14.4x page;
against acme's own 99.9% (budget 0.1%) it is 50x, so only acme pages.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tenantpulse.alert_rules import slo
from tenantpulse.alert_rules.rules import RULES_FILE, write_rules
from tenantpulse.alert_rules.spec import parse_spec
from tests.support.exporter import Exporter
from tests.support.ports import wait_until
from tests.support.prometheus import Prometheus

pytestmark = pytest.mark.integration

PREMIUM, STANDARD = "acme", "globex"
EVENTS = {"metric": "tenantpulse_events_total"}
SPEC: dict[str, Any] = {
    "defaults": {"runbook_base": "https://runbooks.example.test"},
    "slos": [
        {
            "name": "ingest",
            "objective": 0.99,
            "tenant_objectives": {PREMIUM: 0.999},
            "indicator": {"error": {**EVENTS, "match": {"event_type": "error"}}, "total": EVENTS},
            "for": {"page": "0s", "ticket": "0s"},
        }
    ],
}


class SameBurn:
    """Posts 1 error in every 20 events for both tenants until stopped."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        events = ["error"] + ["song_play"] * 19
        while not self._stop.is_set():
            for tenant in (PREMIUM, STANDARD):
                self.exporter.post(
                    {"events": [{"tenant_id": tenant, "event_type": e} for e in events]}, key=tenant
                )
            self._stop.wait(0.2)

    def __enter__(self) -> SameBurn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_the_tenant_with_an_override_pages_and_the_other_does_not(tmp_path: Path) -> None:
    spec = parse_spec(SPEC)
    ingest = spec.slos[0]
    write_rules(spec, tmp_path / "rules")
    page = f'ALERTS{{alertname="{ingest.alert_name}",burn="page",alertstate="firing"}}'
    with (
        Exporter(tmp_path / "exporter", tenants=(PREMIUM, STANDARD)) as exporter,
        Prometheus(
            tmp_path, [exporter.scrape_config()], rule_files=[str(tmp_path / "rules" / RULES_FILE)]
        ) as prom,
        SameBurn(exporter),
    ):
        wait_until(lambda: prom.value(page, tenant=PREMIUM) == 1, timeout=60, what="acme's page")
        fast = ingest.burn_rules[0].windows[0]
        for tenant in (PREMIUM, STANDARD):  # the same burn for both: about 5% errors over the page windows
            for window in (fast.long, fast.short):
                ratio = prom.value(slo.selector(ingest, window), tenant=tenant)
                assert ratio is not None and 0.03 < ratio < 0.08, (tenant, window, ratio)
        assert prom.value(slo.selector(ingest, "budget"), tenant=PREMIUM) == pytest.approx(0.001)
        assert prom.value(slo.selector(ingest, "budget"), tenant=STANDARD) == pytest.approx(0.01)
        assert prom.value(f'ALERTS{{alertname="{ingest.alert_name}",burn="page"}}', tenant=STANDARD) is None
        remaining = {
            t: prom.value(slo.selector(ingest, "budget_remaining"), tenant=t) for t in (PREMIUM, STANDARD)
        }
        assert remaining[PREMIUM] is not None and remaining[STANDARD] is not None
        assert remaining[PREMIUM] < remaining[STANDARD], remaining  # 50x overspent against 5x
