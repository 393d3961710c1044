"""The demo's alerting component: its generated rules pass promtool, and an alert pushed into its real
Alertmanager is delivered to the local Slack, SMTP and webhook sinks and printed."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import requests

from tenantpulse.alert_rules import checks
from tenantpulse.alert_rules.rules import TESTS_FILE
from tenantpulse.demo.alerting import AlertingComponent
from tenantpulse.demo.context import DemoContext
from tests.support.ports import wait_until
from tests.support.prometheus import require

pytestmark = pytest.mark.integration


def test_demo_alerting_delivers_to_sinks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require("prometheus-alertmanager")
    ctx = DemoContext(workdir=tmp_path, args=argparse.Namespace())
    component = AlertingComponent()
    component.prepare(ctx)
    assert ctx.alertmanagers and ctx.rule_files
    assert "SUCCESS" in checks.test_rules(tmp_path / "alerting" / "rules" / TESTS_FILE)
    component.start(ctx)
    try:
        alert = {
            "labels": {
                "alertname": "TenantHighErrorRate",
                "tenant": "acme",
                "severity": "critical",
                "tenantpulse_channels": "slack,email",
                "tenantpulse_actions": "notify_oncall",
            },
            "annotations": {
                "summary": "High error rate for tenant acme",
                "value": "300m",
                "runbook_url": "https://rb",
            },
        }
        requests.post(
            f"{ctx.values['alertmanager_url']}/api/v2/alerts", json=[alert], timeout=5
        ).raise_for_status()
        hook, mail = ctx.values["sinks"]
        wait_until(
            lambda: hook.payloads("/slack") and mail.received() and hook.payloads("/notify_oncall"),
            timeout=30,
        )
    finally:
        component.stop()
    out = capsys.readouterr().out
    assert "[notification] slack #tenantpulse-demo: [FIRING:1] TenantHighErrorRate · tenant acme" in out
    assert "[notification] email to oncall@example.com: [FIRING] TenantHighErrorRate for tenant acme" in out
    assert "[notification] webhook /notify_oncall: firing TenantHighErrorRate tenant=acme" in out
