"""The real exporter process, scraped by the real Prometheus; promtool on its live output; its logs."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tenantpulse.conventions import catalog as c
from tenantpulse.exporters.traffic import TenantProfile, TrafficGenerator
from tests.support.exporter import Exporter, sample_value
from tests.support.ports import wait_until
from tests.support.prometheus import Prometheus, require

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shared_exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    """One exporter for the tests that do not need a fresh one (each uses its own tenants)."""
    with Exporter(
        tmp_path_factory.mktemp("exporter"), tenants=("a1", "a2", "a3", "p1", "g1", "g2", "g3")
    ) as ex:
        yield ex


def events(tenant: str, event_type: str, n: int, **metadata: float) -> list[dict[str, object]]:
    return [
        {"tenant_id": tenant, "user_id": f"{tenant}-user-{i}", "event_type": event_type, "metadata": metadata}
        for i in range(n)
    ]


def test_prometheus_scrapes_each_tenants_series_with_the_right_values(tmp_path: Path) -> None:
    with Exporter(tmp_path / "exporter") as ex:
        ex.post(
            {"events": events("t1", "song_play", 5) + events("t1", "error", 2, duration_ms=300)}, key="t1"
        )
        ex.post(
            {"events": events("t2", "song_play", 3), "business": [{"tenant_id": "t2", "revenue": 10}]},
            key="t2",
        )
        ex.post({"tenant_id": "t3", "user_id": "x", "event_type": "session_start"}, key="t3")
        jobs = [ex.scrape_config("all"), ex.scrape_config("only_t1", tenant="t1")]
        (tmp_path / "prom").mkdir()
        with Prometheus(tmp_path / "prom", jobs) as prom:
            wait_until(prom.targets_up, timeout=30, what="both scrape jobs up")
            wait_until(
                lambda: prom.value(c.EVENTS.name, tenant="t3", job="all") is not None,
                timeout=30,
                what="tenant series in Prometheus",
            )
            assert prom.value(c.EVENTS.name, tenant="t1", event_type="song_play", job="all") == 5
            assert prom.value(c.EVENTS.name, tenant="t1", event_type="error", job="all") == 2
            assert prom.value(c.EVENTS.name, tenant="t2", event_type="song_play", job="all") == 3
            assert prom.value(c.EVENTS.name, tenant="t3", event_type="session_start", job="all") == 1
            assert prom.value(c.REVENUE.name, tenant="t2", job="all") == 10
            count = prom.value(c.EVENT_DURATION.sample("count"), tenant="t1", event_type="error", job="all")
            total = prom.value(c.EVENT_DURATION.sample("sum"), tenant="t1", event_type="error", job="all")
            assert (count, total) == (2, pytest.approx(0.6))
            unique = prom.value(c.UNIQUE_USERS.name, tenant="t1", window="1h", job="all")
            assert unique == pytest.approx(5, abs=0.5)  # t1-user-0..4 (0 and 1 sent twice)

            # The per-tenant job carries t1 and nothing of any other tenant.
            per_tenant = prom.query('group by (tenant) ({job="only_t1", tenant!=""})')
            assert [row["metric"]["tenant"] for row in per_tenant] == ["t1"]
            assert prom.value(c.EVENTS.name, tenant="t1", event_type="song_play", job="only_t1") == 5

            # A refused batch (its last event is bad) adds nothing; the next good one adds its 4 events.
            bad = events("t1", "song_play", 3) + [{"tenant_id": "t1", "event_type": "bad type"}]
            assert ex.post({"events": bad}, key="t1", check=False).status_code == 422
            ex.post({"events": events("t1", "song_play", 4)}, key="t1")
            wait_until(
                lambda: prom.value(c.EVENTS.name, tenant="t1", event_type="song_play", job="all") == 9,
                timeout=20,
                what="updated count scraped",
            )


def test_promtool_accepts_the_live_exposition(shared_exporter: Exporter) -> None:
    promtool = require("promtool")
    ex = shared_exporter
    ex.post(
        {
            "events": events("p1", "song_play", 20, duration_ms=120)
            + events("p1", "error", 3, duration_seconds=2),
            "business": [{"tenant_id": "p1", "revenue": 3.5, "active_users": 12, "conversion_rate": 0.04}],
        },
        key="p1",
    )
    requests.post(f"{ex.url}/analytics/metrics", json={"tenant_id": "p1"}, headers=ex.auth("p1"), timeout=5)
    for text in (ex.metrics(), ex.metrics(tenant="p1")):
        assert sample_value(text, c.EVENTS.name, tenant="p1", event_type="song_play") == 20
        result = subprocess.run(
            [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
        )
        assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
        assert result.stdout.strip() == b"" and result.stderr.strip() == b"", result.stdout + result.stderr


def test_logs_carry_request_ids_but_no_keys_or_user_ids(shared_exporter: Exporter) -> None:
    ex = shared_exporter
    user_id = "user-PII-4f7c1e"
    r = requests.post(
        f"{ex.url}/analytics/metrics",
        json={"tenant_id": "a1", "user_id": user_id, "event_type": "song_play"},
        headers={**ex.auth("a1"), "X-Request-ID": "req-logcheck-1"},
        timeout=5,
    )
    assert r.status_code == 200 and r.headers["x-request-id"] == "req-logcheck-1"
    bad = requests.post(  # a refused request with the user id in it must not leak it either
        f"{ex.url}/analytics/metrics",
        json={"tenant_id": "a1", "user_id": user_id, "event_type": "bad type"},
        headers=ex.auth("a1"),
        timeout=5,
    )
    assert bad.status_code == 422
    requests.get(
        f"{ex.url}/analytics/metrics/a1", headers={"Authorization": "Bearer wrong-key-9d2"}, timeout=5
    )

    def access_line() -> dict[str, object] | None:
        lines = [
            x
            for x in ex.log_lines()
            if x.get("request_id") == "req-logcheck-1" and x.get("event") == "request"
        ]
        return lines[0] if lines else None

    line = wait_until(access_line, timeout=10, what="access log line")
    assert isinstance(line, dict)
    assert (line["status"], line["tenant"], line["path"], line["key_id"]) == (
        200,
        "a1",
        "/analytics/metrics",
        "a1",
    )
    log = ex.log_path.read_text()
    assert user_id not in log
    assert "wrong-key-9d2" not in log
    for secret in ex.keys.values():
        assert secret not in log
    assert log.count('"event": "request"') >= 3  # one access line per request


def test_traffic_generator_shapes_tenants_and_misbehaves(shared_exporter: Exporter) -> None:
    ex = shared_exporter
    profiles = [TenantProfile(t, ex.keys[t], rate=200.0) for t in ("g1", "g2", "g3")]
    gen = TrafficGenerator(ex.url, profiles, seed=7)
    gen.misbehave("g3", "error_spike")
    for _ in range(3):
        assert gen.tick(dt=1.0) > 0
    assert gen.stats.refused == 0, gen.stats.last_error
    share = {}
    for tenant in ("g1", "g3"):
        snap = requests.get(f"{ex.url}/analytics/metrics/{tenant}", headers=ex.auth(tenant), timeout=5).json()
        share[tenant] = snap["events"].get("error", 0) / sum(snap["events"].values())
        assert snap["revenue"] > 0 and snap["active_users"] > 0
    assert share["g1"] < 0.08 < 0.2 < share["g3"]


def test_rate_limit_through_the_real_server(tmp_path: Path) -> None:
    with Exporter(
        tmp_path / "exporter", tenants=("r1",), extra_args=["--rate-limit", "5", "--rate-burst", "20"]
    ) as ex:
        assert ex.post({"events": events("r1", "song_play", 20)}, key="r1").status_code == 200
        r = ex.post({"events": events("r1", "song_play", 20)}, key="r1", check=False)
        assert r.status_code == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 4  # 20 events at 5/s, minus what refilled meanwhile
        assert r.json()["error"] == "rate_limited" and r.json()["field"] == "tenant_id"
        snap = requests.get(f"{ex.url}/analytics/metrics/r1", headers=ex.auth("r1"), timeout=5).json()
        assert snap["events"] == {"song_play": 20}
        text = ex.metrics(tenant="r1")
        assert sample_value(text, c.INGEST_REJECTED.name, tenant="r1", reason="rate_limited") == 1
