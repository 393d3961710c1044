"""The generated Alertmanager config in a real Alertmanager: severity routes pick the Slack channel, a
critical inhibits the warning of the same alert and tenant only, and channel labels choose receivers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from tenantpulse.alert_rules.alertmanager import write_alertmanager
from tenantpulse.alert_rules.spec import parse_spec
from tests.support.alertmanager import Alertmanager
from tests.support.ports import wait_until
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
            ]
            requests.post(f"{am.url}/api/v2/alerts", json=batch, timeout=5).raise_for_status()
            wait_until(
                lambda: len(hook.payloads("/slack")) >= 2 and mail.received(),
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
        ("#alerts", "[FIRING:1] TenantHighErrorRate · tenant globex"),
        ("#oncall-page", "[FIRING:1] TenantHighErrorRate · tenant acme"),
    ]
    acme = next(p for p in hook.payloads("/slack") if "acme" in p["attachments"][0]["title"])
    assert "Severity: `critical`" in acme["attachments"][0]["text"]
    assert inhibited == {("acme", "warning")}
    assert [m["Subject"] for m in mail.received()] == ["[FIRING] RevenueStalled for tenant initech"]
