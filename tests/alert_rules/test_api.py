"""``/analytics/alerts`` on the exporter app, with real promtool and a real Prometheus that reloads.

Accepted changes reach Prometheus's loaded rules; refused ones (spec mistakes, PromQL promtool
rejects) answer 422 naming the alert and field, and leave files and Prometheus untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tenantpulse.alert_rules.rules import RULES_FILE
from tenantpulse.alert_rules.store import AlertStore
from tests.support.exporter import app_client, bearer
from tests.support.ports import wait_until
from tests.support.prometheus import Prometheus, require

pytestmark = pytest.mark.integration

SEED: dict[str, Any] = {
    "defaults": {"runbook_base": "https://rb.example", "for": "1m"},
    "channels": {"slack": {"api_url_file": "/run/secrets/slack"}},
    "alerts": [{"name": "HighErrors", "condition": "error_rate > 0.05", "severity": "critical"}],
}


def loaded_alerts(prom: Prometheus) -> dict[str, str]:
    """Alert name -> expression, as Prometheus has them loaded now."""
    groups = requests.get(f"{prom.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    return {r["name"]: r["query"] for g in groups for r in g["rules"] if r["type"] == "alerting"}


def test_alert_changes_are_validated_then_reloaded(tmp_path: Path) -> None:
    require("promtool")
    spec_file, rules_out = tmp_path / "alerts.yaml", tmp_path / "rules"
    spec_file.write_text(yaml.safe_dump(SEED))
    AlertStore(spec_file, rules_out)._apply(SEED)  # seed the rule file Prometheus starts with
    rule_file = rules_out / RULES_FILE

    with (
        Prometheus(tmp_path, [], rule_files=[str(rule_file)]) as prom,
        app_client(tmp_path, alerts_spec=spec_file, rules_out=rules_out, prometheus_url=prom.url) as (
            client,
            keys,
        ),
    ):
        admin = bearer(keys["admin"])
        assert set(loaded_alerts(prom)) == {"HighErrors"}

        listed = client.get("/analytics/alerts", headers=admin).json()["alerts"]
        assert [(a["id"], a["kind"], a["condition"]) for a in listed] == [
            ("HighErrors", "threshold", "error_rate > 0.05")
        ]

        new = {
            "name": "SlowTenant",
            "condition": "p95_latency > 0.5",
            "severity": "warning",
            "channels": ["slack"],
        }
        r = client.post("/analytics/alerts", json=new, headers=admin)
        assert r.status_code == 201 and r.json() == {"id": "SlowTenant", "reloaded": True}
        wait_until(lambda: "SlowTenant" in loaded_alerts(prom), timeout=10, what="SlowTenant loaded")

        ml = {"name": "PlaysOdd", "model": "plays_per_minute", "threshold": 0.95, "sensitivity": "high"}
        assert client.post("/analytics/alerts", json=ml, headers=admin).status_code == 201
        assert client.get("/analytics/alerts/PlaysOdd", headers=admin).json()["kind"] == "anomaly"
        wait_until(lambda: "PlaysOdd" in loaded_alerts(prom), timeout=10, what="PlaysOdd loaded")

        r = client.put("/analytics/alerts/HighErrors", json={"condition": "error_rate > 0.2"}, headers=admin)
        assert r.status_code == 200, r.text
        wait_until(
            lambda: "> 0.2" in loaded_alerts(prom)["HighErrors"], timeout=10, what="HighErrors changed"
        )

        before_rules, before_spec, before_loaded = (
            rule_file.read_text(),
            spec_file.read_text(),
            loaded_alerts(prom),
        )

        bad_indicator = {"name": "Typo", "condition": "eror_rate > 0.1"}
        r = client.post("/analytics/alerts", json=bad_indicator, headers=admin)
        assert r.status_code == 422
        body = r.json()
        assert body["field"] == "condition" and body["detail"][0]["alert"] is None  # the caller's own
        assert "valid: " in body["reason"] and "error_rate" in body["reason"]
        assert "Typo" not in r.text and "eror_rate" not in r.text, "what was sent is not echoed"

        r = client.put(
            "/analytics/alerts/SlowTenant",
            json={"condition": "p95_latency > 0.5", "for": "soon"},
            headers=admin,
        )
        assert r.status_code == 422 and r.json()["field"] == "for"

        test = {
            "tenant": "a",
            "value": 1,
            "firing": [{"series": 'up{tenant="a"}', "values": "1+0x30"}],
            "quiet": [],
        }
        broken = {"name": "BadPromQL", "expr": "sum by (tenant) (rate(up[5m]) >", "test": test}
        r = client.post("/analytics/alerts", json=broken, headers=admin)
        assert r.status_code == 422 and r.json()["error"] == "rules_rejected"
        assert r.json()["field"] == "expr" and "BadPromQL" not in r.text  # promtool's output: the log only

        assert client.post("/analytics/alerts", json=new, headers=admin).status_code == 409
        assert client.delete("/analytics/alerts/Nope", headers=admin).status_code == 404
        r = client.post(
            "/analytics/alerts", content=b"[1, 2", headers={**admin, "Content-Type": "application/json"}
        )
        assert r.status_code == 422 and "Traceback" not in r.text

        assert rule_file.read_text() == before_rules and spec_file.read_text() == before_spec
        assert loaded_alerts(prom) == before_loaded

        tenant_key = bearer(keys["t1"])
        assert client.get("/analytics/alerts", headers=tenant_key).status_code == 403
        assert client.post("/analytics/alerts", json=new, headers=tenant_key).status_code == 403
        assert client.get("/analytics/alerts").status_code == 401

        assert client.delete("/analytics/alerts/SlowTenant", headers=admin).json()["deleted"] is True
        wait_until(lambda: "SlowTenant" not in loaded_alerts(prom), timeout=10, what="SlowTenant removed")
        names = [a["name"] for a in yaml.safe_load(spec_file.read_text())["alerts"]]
        assert names == ["HighErrors"]
        assert [p.name for p in rules_out.iterdir()] == [RULES_FILE]  # no temp dirs, no test file


def test_alerts_api_without_configuration_says_how(tmp_path: Path) -> None:
    with app_client(tmp_path) as (client, keys):
        r = client.get("/analytics/alerts", headers=bearer(keys["admin"]))
    assert r.status_code == 409 and "--alerts-spec" in r.json()["reason"]


def test_a_broken_spec_file_is_a_422_naming_the_file_not_a_500(tmp_path: Path) -> None:
    """Regression: a hand-edited spec file that is not YAML made every alerts call a 500."""
    spec_file = tmp_path / "alerts.yaml"
    spec_file.write_text("alerts: [unclosed\n")
    with app_client(tmp_path, alerts_spec=spec_file, rules_out=tmp_path / "rules") as (client, keys):
        r = client.get("/analytics/alerts", headers=bearer(keys["admin"]))
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_alert" and str(spec_file) in r.json()["reason"]
    assert "not valid YAML" in r.json()["reason"]


def test_exporter_refuses_alerts_spec_without_rules_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tenantpulse.cli import main
    from tests.support.exporter import write_keys_file

    keys = tmp_path / "keys.yaml"
    write_keys_file(keys, ["t1"])
    assert main(["exporter", "--api-keys", str(keys), "--alerts-spec", str(tmp_path / "alerts.yaml")]) == 2
    assert "--alerts-spec and --rules-out go together" in capsys.readouterr().err
