"""The alerting part of ``tenantpulse demo``: generated rules, a real Alertmanager and local sinks.

Add ``AlertingComponent`` to ``tenantpulse.demo.stack.COMPONENTS`` before ``PrometheusComponent`` (it adds
the rule file and the Alertmanager target Prometheus starts with). With ``--misbehave acme:error_spike``
the ``TenantHighErrorRate`` alert fires about a minute later and the Slack message, email and
notify_oncall webhook are printed by the demo as they arrive.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tenantpulse.alert_rules.alertmanager import write_alertmanager
from tenantpulse.alert_rules.rules import RULES_FILE, write_rules
from tenantpulse.alert_rules.spec import Spec, parse_spec
from tenantpulse.demo.context import DemoContext, child, pick_port, say
from tenantpulse.demo.sinks import MailSink, WebhookSink, describe_mail, describe_payload
from tenantpulse.kernel.errors import UsageError


def demo_spec(slack_url_file: Path, smarthost: str, webhook_base: str) -> Spec:
    """Short windows and waits so a misbehaving demo tenant pages within about a minute."""
    return parse_spec(
        {
            "defaults": {"runbook_base": "https://runbooks.example.com/tenantpulse", "window": "1m"},
            "channels": {
                "slack": {"api_url_file": str(slack_url_file), "channel": "#tenantpulse-demo"},
                "email": {
                    "to": "oncall@example.com",
                    "from": "alertmanager@example.com",
                    "smarthost": smarthost,
                    "require_tls": False,
                },
            },
            "actions": {"notify_oncall": {"url": f"{webhook_base}/notify_oncall"}},
            "routing": {"group_wait": "5s", "group_interval": "10s", "repeat_interval": "1h"},
            "alerts": [
                {
                    "name": "TenantHighErrorRate",
                    "condition": "error_rate > 0.1",
                    "for": "30s",
                    "severity": "critical",
                    "actions": ["notify_oncall"],
                    "summary": "High error rate for tenant {{ $labels.tenant }}",
                    "description": "{{ $value | humanizePercentage }} of tenant {{ $labels.tenant }}'s events are errors.",
                }
            ],
            "ml_alerts": [
                {
                    "name": "TenantPlaysAnomaly",
                    "model": "plays_per_minute",
                    "threshold": 0.9,
                    "sensitivity": "high",
                    "channels": ["slack"],
                    "description": 'Anomaly score {{ printf "%.2f" $value }} on plays per minute for {{ $labels.tenant }}.',
                }
            ],
        }
    )


DATA_DIR = "alerting/alertmanager-data"  # silences and the notification log, kept between runs


class AlertingComponent:
    name = "alerting"
    saved: tuple[str, ...] = (DATA_DIR,)

    def prepare(self, ctx: DemoContext) -> None:
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if binary is None:
            raise UsageError(
                "the demo's alerting needs Alertmanager: apt-get install prometheus-alertmanager"
            )
        out = ctx.workdir / "alerting"
        self.hook = WebhookSink(
            port=pick_port(9099), on_payload=lambda path, doc: _show(describe_payload(path, doc))
        )
        self.mail = MailSink(port=pick_port(2525), on_message=lambda msg: _show(describe_mail(msg)))
        slack_url_file = out / "slack-webhook-url"
        out.mkdir(parents=True, exist_ok=True)
        slack_url_file.write_text(self.hook.url("/slack"))
        spec = demo_spec(slack_url_file, self.mail.smarthost, self.hook.url("").rstrip("/"))
        write_rules(spec, out / "rules")
        config = write_alertmanager(spec, out / "alertmanager")[0]
        port = pick_port(9093)
        self.url = f"http://127.0.0.1:{port}"
        ctx.rule_files.append(str(out / "rules" / RULES_FILE))
        ctx.alertmanagers.append(f"127.0.0.1:{port}")
        ctx.urls["alertmanager"] = self.url
        ctx.urls["slack/webhook sink"] = self.hook.url("/")
        ctx.urls["smtp sink"] = self.mail.smarthost
        ctx.values["alertmanager_url"] = self.url
        ctx.values["sinks"] = (self.hook, self.mail)
        ctx.notes.append(
            "alerts: TenantHighErrorRate pages when a tenant's error rate > 10% for 30s "
            "(try --misbehave acme:error_spike); notifications are printed here as they arrive"
        )
        self.process = child(
            "alertmanager",
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={ctx.workdir / DATA_DIR}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            ctx,
        )

    def start(self, ctx: DemoContext) -> None:
        self.hook.start()
        self.mail.start()
        self.process.start(f"{self.url}/-/ready")

    def stop(self) -> None:
        self.process.stop()
        self.mail.stop()
        self.hook.stop()


def _show(line: str) -> None:
    say(f"  [notification] {line}")
