"""``/analytics/alert-routing`` with real promtool, amtool, Prometheus and Alertmanager.

A good channel change reaches the running Alertmanager (reloaded through ``/-/reload``) and the rules
(an alert without ``channels`` goes to all of them); a bad one is a 422 naming the field, and files,
Prometheus and Alertmanager keep what they had. Concurrent changes are serialised: none is lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from fastapi.testclient import TestClient

from tenantpulse.alert_rules.alertmanager import CONFIG_FILE, DEFAULT_RECEIVER
from tenantpulse.alert_rules.rules import RULES_FILE
from tenantpulse.alert_rules.store import AlertStore
from tests.support.alertmanager import Alertmanager
from tests.support.exporter import app_client, bearer
from tests.support.ports import wait_until
from tests.support.prometheus import Prometheus, require
from tests.support.sinks import MailSink, WebhookSink

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    client: TestClient
    admin: dict[str, str]
    store: AlertStore
    prom: Prometheus
    am: Alertmanager
    hook: WebhookSink
    mail: MailSink

    def loaded_config(self) -> str:
        """The config text the running Alertmanager has loaded."""
        r = requests.get(f"{self.am.url}/api/v2/status", timeout=5)
        r.raise_for_status()
        return str(r.json()["config"]["original"])

    def loaded_receivers(self) -> dict[str, set[str]]:
        """Receiver name -> its kinds of config (``email_configs``), as the running Alertmanager has them."""
        return _receivers(self.loaded_config())

    def file_receivers(self) -> dict[str, set[str]]:
        return _receivers(self.am_file().read_text())

    def rule_labels(self, alert: str) -> dict[str, str] | None:
        """The labels of the loaded alerting rule, None while Prometheus has no rule of that name."""
        groups = requests.get(f"{self.prom.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
        return next((r["labels"] for g in groups for r in g["rules"] if r["name"] == alert), None)

    def files(self) -> tuple[str, str, str]:
        return (
            self.store.spec_path.read_text(),
            (self.store.rules_out / RULES_FILE).read_text(),
            self.am_file().read_text(),
        )

    def am_file(self) -> Path:
        assert self.store.alertmanager_out is not None
        return self.store.alertmanager_out / CONFIG_FILE


def _receivers(config: str) -> dict[str, set[str]]:
    return {r["name"]: set(r) - {"name"} for r in yaml.safe_load(config)["receivers"]}


def email(mail: MailSink) -> dict[str, Any]:
    return {
        "to": "ops@example.test",
        "from": "am@example.test",
        "smarthost": mail.smarthost,
        "require_tls": False,
    }


@contextmanager
def stack(tmp_path: Path) -> Iterator[Stack]:
    require("promtool")
    require("amtool")
    with WebhookSink() as hook, MailSink() as mail:
        slack_url = tmp_path / "slack-url"
        slack_url.write_text(hook.url("/slack"))
        seed: dict[str, Any] = {
            "defaults": {"runbook_base": "https://rb.example", "for": "1m"},
            "channels": {"slack": {"api_url_file": str(slack_url), "channel": "#alerts"}},
            "routing": {"group_wait": "1s", "group_interval": "1s"},
            "alerts": [
                {
                    "name": "HighErrors",
                    "condition": "error_rate > 0.05",
                    "severity": "critical",
                },  # all channels
                {"name": "SlowTenant", "condition": "p95_latency > 0.5", "channels": ["slack"]},
            ],
        }
        spec_file, rules_out, am_out = tmp_path / "alerts.yaml", tmp_path / "rules", tmp_path / "am"
        spec_file.write_text(yaml.safe_dump(seed))
        AlertStore(spec_file, rules_out, alertmanager_out=am_out)._apply(seed, alertmanager=True)
        with (
            Prometheus(tmp_path, [], rule_files=[str(rules_out / RULES_FILE)]) as prom,
            Alertmanager(tmp_path, am_out / CONFIG_FILE) as am,
            app_client(
                tmp_path,
                alerts_spec=spec_file,
                rules_out=rules_out,
                prometheus_url=prom.url,
                alertmanager_out=am_out,
                alertmanager_url=am.url,
            ) as (client, keys),
        ):
            store = AlertStore(spec_file, rules_out, prom.url, am_out, am.url)
            yield Stack(client, bearer(keys["admin"]), store, prom, am, hook, mail)


def test_a_channel_change_is_checked_written_and_reloads_alertmanager(tmp_path: Path) -> None:
    with stack(tmp_path) as s:
        assert s.loaded_receivers()[DEFAULT_RECEIVER] == {"slack_configs"}
        got = s.client.get("/analytics/alert-routing", headers=s.admin).json()
        assert set(got["channels"]) == {"slack"} and got["actions"] == {}

        channels = {**got["channels"], "email": email(s.mail)}
        change = {"channels": channels, "routing": {**got["routing"], "default_receiver": "email"}}
        r = s.client.put("/analytics/alert-routing", json=change, headers=s.admin)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "sections": ["channels", "routing"],
            "reloaded": {"prometheus": True, "alertmanager": True},
        }

        # The running Alertmanager has the new config: the catch-all now mails.
        assert s.loaded_receivers() == s.file_receivers()
        assert s.loaded_receivers()[DEFAULT_RECEIVER] == {"email_configs"}
        outside = {"labels": {"alertname": "NodeDown", "severity": "critical", "tenant": "ext"}}
        requests.post(f"{s.am.url}/api/v2/alerts", json=[outside], timeout=5).raise_for_status()
        wait_until(s.mail.received, timeout=30, what="the outside alert mailed by the default receiver")
        assert [m["Subject"] for m in s.mail.received()] == ["[FIRING] NodeDown for tenant ext"]
        assert s.hook.payloads("/slack") == []  # not Slack any more
        # Prometheus reloaded the rules: the alert without channels now goes to email too.
        wait_until(
            lambda: (s.rule_labels("HighErrors") or {}).get("tenantpulse_channels") == "slack,email",
            timeout=10,
            what="HighErrors routed to slack and email",
        )
        assert (s.rule_labels("SlowTenant") or {})["tenantpulse_channels"] == "slack"


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        (
            {"channels": {"email": {"to": "a@b.c", "from": "d@e.f", "smarthost": "nohost"}}},
            "invalid_alert",
            "channels.email.smarthost",
        ),
        ({"channels": {}}, "invalid_alert", "channels"),  # SlowTenant names slack
        ({"routing": {"group_interval": "0s"}}, "config_rejected", "routing.group_interval"),  # amtool only
        ({"routing": {"default_receiver": "pager"}}, "invalid_alert", "routing.default_receiver"),
        ({"alerts": []}, "invalid_alert", "alerts"),
        ({}, "invalid_alert", "channels"),  # nothing to change
    ],
)
def test_a_bad_channel_change_is_a_422_and_the_running_config_stays(
    tmp_path: Path, change: dict[str, Any], error: str, field: str
) -> None:
    with stack(tmp_path) as s:
        before, loaded = s.files(), s.loaded_config()
        r = s.client.put("/analytics/alert-routing", json=change, headers=s.admin)
        assert r.status_code == 422, r.text
        assert (r.json()["error"], r.json()["field"]) == (error, field)
        assert "nohost" not in r.text and "pager" not in r.text  # what was sent is not echoed
        assert s.files() == before and s.loaded_config() == loaded
        left = sorted(p.name for p in s.am_file().parent.iterdir())
        assert left == sorted([CONFIG_FILE, "tenantpulse.tmpl"])  # no temp dirs left


def test_removing_a_channel_an_alert_names_says_which_alert(tmp_path: Path) -> None:
    with stack(tmp_path) as s:
        r = s.client.put("/analytics/alert-routing", json={"channels": {}}, headers=s.admin)
    body = r.json()
    assert r.status_code == 422 and body["detail"][0]["alert"] == "SlowTenant", body
    assert "slack" in body["reason"]


def test_concurrent_changes_are_serialised_and_none_is_lost(tmp_path: Path) -> None:
    with stack(tmp_path) as s:
        slack = s.store.routing()["channels"]["slack"]
        both = {"slack": slack, "email": email(s.mail)}

        def add(i: int) -> object:
            return AlertStore(**vars_of(s.store)).add({"name": f"Added{i}", "condition": "error_rate > 0.5"})

        def switch(receiver: str) -> object:
            routing = {"group_wait": "1s", "group_interval": "1s", "default_receiver": receiver}
            return AlertStore(**vars_of(s.store)).set_routing({"channels": both, "routing": routing})

        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(add, i) for i in range(4)]
            futures += [pool.submit(switch, r) for r in ("email", "slack")]
            results = [f.result() for f in futures]
        assert results[:4] == [True] * 4 and all(
            r == {"prometheus": True, "alertmanager": True} for r in results[4:]
        )

        spec = yaml.safe_load(s.store.spec_path.read_text())
        names = {a["name"] for a in spec["alerts"]}
        assert names == {"HighErrors", "SlowTenant", *(f"Added{i}" for i in range(4))}  # no add lost
        assert set(spec["channels"]) == {"slack", "email"}  # no routing change undone by an add
        assert s.loaded_receivers() == s.file_receivers()  # the last reload loaded the last file
        last = spec["routing"]["default_receiver"]
        assert s.loaded_receivers()[DEFAULT_RECEIVER] == {f"{last}_configs"}
        wait_until(lambda: s.rule_labels("Added3") is not None, timeout=10, what="the last rules loaded")


def vars_of(store: AlertStore) -> dict[str, Any]:
    """A second store on the same files, as each request builds its own."""
    return {
        "spec_path": store.spec_path,
        "rules_out": store.rules_out,
        "prometheus_url": store.prometheus_url,
        "alertmanager_out": store.alertmanager_out,
        "alertmanager_url": store.alertmanager_url,
    }


def test_channel_changes_without_alertmanager_out_say_how(tmp_path: Path) -> None:
    spec_file = tmp_path / "alerts.yaml"
    with app_client(tmp_path, alerts_spec=spec_file, rules_out=tmp_path / "rules") as (client, keys):
        r = client.put("/analytics/alert-routing", json={"routing": {}}, headers=bearer(keys["admin"]))
    assert r.status_code == 409 and "--alertmanager-out" in r.json()["reason"]
    assert not spec_file.exists()
