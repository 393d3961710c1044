"""The generated Alertmanager config in a real Alertmanager: severity routes pick the Slack channel, a
critical inhibits the warning of the same alert and tenant only, and channel labels choose receivers.
Alerts without the bundle's labels (from outside it) reach the default receiver, checked with amtool."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tenantpulse.alert_rules import checks
from tenantpulse.alert_rules.alertmanager import DEFAULT_RECEIVER, write_alertmanager
from tenantpulse.alert_rules.spec import parse_spec
from tenantpulse.kernel.errors import SpecError
from tests.support.alertmanager import Alertmanager, routes_to
from tests.support.ports import wait_until
from tests.support.prometheus import require
from tests.support.sinks import MailSink, WebhookSink

pytestmark = pytest.mark.integration


def alert(tenant: str, severity: str, channels: str, name: str = "TenantHighErrorRate") -> dict[str, object]:
    labels = {"alertname": name, "tenant": tenant, "severity": severity, "tenantpulse_channels": channels}
    return {"labels": labels, "annotations": {"summary": f"{name} {severity} {tenant}", "value": "1"}}


def test_inhibition_and_routing_in_real_alertmanager(tmp_path: Path) -> None:
    with WebhookSink() as hook, MailSink() as mail:
        url_file = tmp_path / "slack-url"
        url_file.write_text(hook.url("/slack"))
        spec = parse_spec(
            {
                "channels": {
                    "slack": {
                        "api_url_file": str(url_file),
                        "channel": "#alerts",
                        "channel_by_severity": {"critical": "#oncall-page"},
                    },
                    "email": {
                        "to": "ops@example.test",
                        "from": "am@example.test",
                        "smarthost": mail.smarthost,
                        "require_tls": False,
                    },
                },
                "routing": {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
            }
        )
        config = write_alertmanager(spec, tmp_path / "am")[0]
        with Alertmanager(tmp_path, config) as am:
            batch = [
                alert("acme", "critical", "slack"),
                alert("acme", "warning", "slack"),  # inhibited: same alertname and tenant as the critical
                alert("globex", "warning", "slack"),  # not inhibited: another tenant
                alert("initech", "info", "email", name="RevenueStalled"),  # email only
                {"labels": {"alertname": "NodeDown", "severity": "critical"}},  # outside the bundle
            ]
            requests.post(f"{am.url}/api/v2/alerts", json=batch, timeout=5).raise_for_status()
            wait_until(
                lambda: len(hook.payloads("/slack")) >= 3 and mail.received(),
                timeout=30,
                what="notifications",
            )
            time.sleep(2)  # an uninhibited acme warning would arrive with the others
            inhibited = {
                (a["labels"]["tenant"], a["labels"]["severity"])
                for a in am.alerts()
                if a["status"]["inhibitedBy"]
            }

    slack = sorted((p["channel"], p["attachments"][0]["title"]) for p in hook.payloads("/slack"))
    assert slack == [
        ("#alerts", "[FIRING:1] NodeDown · tenant "),  # the default receiver posts to the default channel
        ("#alerts", "[FIRING:1] TenantHighErrorRate · tenant globex"),
        ("#oncall-page", "[FIRING:1] TenantHighErrorRate · tenant acme"),
    ]
    acme = next(p for p in hook.payloads("/slack") if "acme" in p["attachments"][0]["title"])
    assert "Severity: `critical`" in acme["attachments"][0]["text"]
    assert inhibited == {("acme", "warning")}
    assert [m["Subject"] for m in mail.received()] == ["[FIRING] RevenueStalled for tenant initech"]


CHANNELS: dict[str, Any] = {
    "slack": {"api_url_file": "/run/secrets/slack", "channel": "#alerts"},
    "email": {"to": "ops@example.test", "from": "am@example.test", "smarthost": "smtp.example.test:25"},
}
ACTIONS = {"page": {"url": "http://pager.example.test/hook"}}


@pytest.mark.parametrize(
    ("default", "configs"),
    [(None, "slack_configs"), ("email", "email_configs"), ("page", "webhook_configs")],
)
def test_alerts_without_bundle_labels_reach_the_default_receiver(
    tmp_path: Path, default: str | None, configs: str
) -> None:
    require("amtool")
    routing = {} if default is None else {"default_receiver": default}
    spec = parse_spec({"channels": CHANNELS, "actions": ACTIONS, "routing": routing})
    config = write_alertmanager(spec, tmp_path)[0]
    assert "SUCCESS" in checks.check_alertmanager(config)
    receiver = next(
        r for r in yaml.safe_load(config.read_text())["receivers"] if r["name"] == DEFAULT_RECEIVER
    )
    assert set(receiver) == {"name", configs}  # Slack when not chosen: the first channel configured

    # From outside the bundle: with or without a severity, never tenantpulse-null (it no longer exists).
    assert routes_to(config, "alertname=KubeNodeNotReady", "severity=critical") == {DEFAULT_RECEIVER}
    assert routes_to(config, "alertname=Watchdog") == {DEFAULT_RECEIVER}
    assert routes_to(config, "alertname=X", "severity=warning", "tenantpulse_channels=") == {DEFAULT_RECEIVER}
    # The bundle's own alerts keep their receivers, and only those.
    assert routes_to(config, "severity=critical", "tenant=a", "tenantpulse_channels=slack,email") == {
        "slack-critical",
        "email",
    }
    assert routes_to(config, "severity=warning", "tenantpulse_actions=page") == {"action-page"}
    assert "tenantpulse-null" not in config.read_text()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            {"channels": CHANNELS, "routing": {"default_receiver": "pager"}},
            "unknown channel or action 'pager'",
        ),
        ({"routing": {"default_receiver": "slack"}}, "unknown channel or action 'slack'"),
        ({}, "no channel or action to send alerts without tenantpulse labels to"),
        ({"channels": CHANNELS, "routing": {"default_receiver": ""}}, "must be a non-empty string"),
    ],
)
def test_a_default_receiver_that_cannot_send_is_refused_naming_the_field(
    tmp_path: Path, data: dict[str, Any], reason: str
) -> None:
    with pytest.raises(SpecError) as caught:
        write_alertmanager(parse_spec(data), tmp_path)
    assert caught.value.field == "routing.default_receiver" and reason in str(caught.value)
    assert not (tmp_path / "alertmanager.yml").exists()


def test_cli_refuses_an_unknown_default_receiver_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tenantpulse.cli import main

    spec = tmp_path / "alerts.yaml"
    spec.write_text(yaml.safe_dump({"channels": CHANNELS, "routing": {"default_receiver": "pager"}}))
    assert main(["generate", "alertmanager", "--spec", str(spec), "--out", str(tmp_path / "am")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"error: {spec}: field 'routing.default_receiver': unknown channel or action 'pager'" in err
    assert len(err.splitlines()) == 1
