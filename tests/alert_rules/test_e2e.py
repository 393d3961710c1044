"""End to end: exporter -> Prometheus (generated rules) -> Alertmanager (generated config) -> Slack + SMTP sinks.

Tenant ``acme`` sends only errors for a while, ``globex`` only healthy events. The Slack webhook,
the email and the notify_oncall webhook each get one firing notification naming acme and the
alert, then one resolved notification once acme is healthy again; nothing ever mentions globex.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tenantpulse.alert_rules.alertmanager import write_alertmanager
from tenantpulse.alert_rules.rules import RULES_FILE, write_rules
from tenantpulse.alert_rules.spec import parse_spec
from tests.support.alertmanager import Alertmanager
from tests.support.exporter import Exporter
from tests.support.ports import wait_until
from tests.support.prometheus import Prometheus
from tests.support.sinks import MailSink, WebhookSink, html_body

pytestmark = pytest.mark.integration

BAD, GOOD = "acme", "globex"
ALERT = "E2EHighErrorRate"


def e2e_spec(slack_url_file: Path, smarthost: str, oncall_url: str) -> dict[str, Any]:
    return {
        "channels": {
            "slack": {"api_url_file": str(slack_url_file), "channel": "#tenantpulse-test"},
            "email": {
                "to": "oncall@example.test",
                "from": "am@example.test",
                "smarthost": smarthost,
                "require_tls": False,
            },
        },
        "actions": {"notify_oncall": {"url": oncall_url}},
        "routing": {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
        "alerts": [
            {
                "name": ALERT,
                "condition": "error_rate[1m] > 0.5",  # 1m: the shortest window promtool can check
                "for": "2s",
                "severity": "critical",
                "channels": ["slack", "email"],
                "actions": ["notify_oncall"],
                "summary": "High error rate for tenant {{ $labels.tenant }}",
                "description": "{{ $value | humanizePercentage }} of events are errors for {{ $labels.tenant }}.",
                "runbook_url": "https://runbooks.example.test/high-error-rate",
            }
        ],
    }


class Traffic:
    """Posts events for both tenants in a background thread; ``acme_errors`` switches acme's mix."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter
        self.acme_errors = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            kind = "error" if self.acme_errors else "song_play"
            for tenant, event in ((BAD, kind), (GOOD, "song_play")):
                events = [{"tenant_id": tenant, "event_type": event} for _ in range(5)]
                self.exporter.post({"events": events}, key=tenant)
            self._stop.wait(0.2)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def slack_by_status(hook: WebhookSink, status: str) -> list[dict[str, Any]]:
    return [p for p in hook.payloads("/slack") if p["attachments"][0]["title"].startswith(f"[{status}")]


def mails_by_status(mail: MailSink, status: str) -> list[Any]:
    return [m for m in mail.received() if m["Subject"].startswith(f"[{status}]")]


def test_error_rate_alert_reaches_slack_email_and_webhook_then_resolves(tmp_path: Path) -> None:
    with WebhookSink() as hook, MailSink() as mail:
        slack_url_file = tmp_path / "slack-url"
        slack_url_file.write_text(hook.url("/slack"))
        spec = parse_spec(e2e_spec(slack_url_file, mail.smarthost, hook.url("/notify_oncall")))
        write_rules(spec, tmp_path / "rules")
        am_config = write_alertmanager(spec, tmp_path / "am")[0]

        with (
            Exporter(tmp_path / "exporter", tenants=(BAD, GOOD)) as exporter,
            Alertmanager(tmp_path, am_config) as am,
            Prometheus(
                tmp_path,
                [exporter.scrape_config()],
                rule_files=[str(tmp_path / "rules" / RULES_FILE)],
                alertmanagers=[am.target],
            ) as prom,
            Traffic(exporter) as traffic,
        ):
            wait_until(lambda: slack_by_status(hook, "FIRING"), timeout=45, what="firing Slack message")
            wait_until(lambda: mails_by_status(mail, "FIRING"), timeout=15, what="firing email")
            wait_until(lambda: hook.payloads("/notify_oncall"), timeout=15, what="notify_oncall webhook")
            assert prom.value(f'ALERTS{{alertname="{ALERT}",alertstate="firing"}}', tenant=BAD) == 1

            traffic.acme_errors = False
            wait_until(lambda: slack_by_status(hook, "RESOLVED"), timeout=90, what="resolved Slack message")
            wait_until(lambda: mails_by_status(mail, "RESOLVED"), timeout=15, what="resolved email")
            time.sleep(3)  # a few more group intervals: a duplicate notification would show up now
            assert prom.value(f'ALERTS{{alertname="{ALERT}"}}', tenant=GOOD) is None

    firing, resolved = slack_by_status(hook, "FIRING"), slack_by_status(hook, "RESOLVED")
    assert len(firing) == 1 and len(resolved) == 1, hook.payloads("/slack")
    att = firing[0]["attachments"][0]
    assert firing[0]["channel"] == "#tenantpulse-test"
    assert ALERT in att["title"] and f"tenant {BAD}" in att["title"]
    assert f"Tenant: `{BAD}`" in att["text"] and "Severity: `critical`" in att["text"]
    assert "Runbook: https://runbooks.example.test/high-error-rate" in att["text"]
    assert att["title_link"] == "https://runbooks.example.test/high-error-rate"
    assert "Value: `100%`" in att["text"]  # all of acme's events were errors: ratio 1

    mails_firing, mails_resolved = mails_by_status(mail, "FIRING"), mails_by_status(mail, "RESOLVED")
    assert len(mails_firing) == 1 and len(mails_resolved) == 1, [m["Subject"] for m in mail.received()]
    assert mails_firing[0]["Subject"] == f"[FIRING] {ALERT} for tenant {BAD}"
    assert mails_firing[0]["To"] == "oncall@example.test"
    body = html_body(mails_firing[0])
    assert f"<b>{BAD}</b>" in body and "https://runbooks.example.test/high-error-rate" in body
    assert "100% of events are errors for acme" in body

    oncall = hook.payloads("/notify_oncall")
    assert {p["status"] for p in oncall} == {"firing", "resolved"}
    assert all(a["labels"]["tenant"] == BAD for p in oncall for a in p["alerts"])

    everything = str(hook.payloads()) + "".join(str(m) for m in mail.received())
    assert GOOD not in everything
