"""The chart's AlertmanagerConfig behaves like the generated alertmanager.yml, proven with the real
amtool and two real Alertmanagers: the same receivers for every label set, and byte-identical Slack
and email notifications although the AlertmanagerConfig carries its templates inline.

The Prometheus Operator turns an AlertmanagerConfig back into native configuration; ``to_native``
does the same translation (minus the operator's namespace matcher and receiver-name prefixes).
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tenantpulse.alert_rules import alertmanager, operator, spec
from tests.support.alertmanager import Alertmanager
from tests.support.ports import wait_until
from tests.support.sinks import MailSink, WebhookSink, html_body

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "alerts.yaml"


def _back(node: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    return {snake: node[camel] for snake, camel in fields.items() if camel in node}


def _matchers(found: list[dict[str, str]]) -> list[str]:
    # An absent matchType is the CRD's default, equality.
    return [f"{m['name']}{m.get('matchType', '=')}{json.dumps(m['value'])}" for m in found]


def _route(node: dict[str, Any]) -> dict[str, Any]:
    out = _back(node, operator.ROUTE_FIELDS)
    if node.get("matchers"):
        out["matchers"] = _matchers(node["matchers"])
    if node.get("routes"):
        out["routes"] = [_route(r) for r in node["routes"]]
    return out


def to_native(crd: dict[str, Any], secrets: dict[str, Path]) -> dict[str, Any]:
    """An AlertmanagerConfig spec as alertmanager.yml; secret keys resolve to files holding their value."""
    receivers = []
    for r in crd["receivers"]:
        native: dict[str, Any] = {"name": r["name"]}
        if r.get("slackConfigs"):
            native["slack_configs"] = [
                {**_back(c, operator.SLACK_FIELDS), "api_url_file": str(secrets[c["apiURL"]["key"]])}
                for c in r["slackConfigs"]
            ]
        if r.get("emailConfigs"):
            native["email_configs"] = []
            for c in r["emailConfigs"]:
                conf = _back(c, operator.EMAIL_FIELDS)
                conf["headers"] = {h["key"]: h["value"] for h in c.get("headers", [])}
                if "authPassword" in c:
                    conf["auth_password_file"] = str(secrets[c["authPassword"]["key"]])
                native["email_configs"].append(conf)
        if r.get("webhookConfigs"):
            native["webhook_configs"] = [_back(c, operator.WEBHOOK_FIELDS) for c in r["webhookConfigs"]]
        receivers.append(native)
    inhibit = [
        {
            "source_matchers": _matchers(i["sourceMatch"]),
            "target_matchers": _matchers(i["targetMatch"]),
            "equal": i["equal"],
        }
        for i in crd.get("inhibitRules", [])
    ]
    return {"route": _route(crd["route"]), "receivers": receivers, "inhibit_rules": inhibit}


def converted(parsed: spec.Spec) -> dict[str, Any]:
    """What `tenantpulse generate chart` puts in the chart for this spec."""
    return operator.alertmanager_config(parsed)["spec"]


def require(binary: str) -> None:
    if not shutil.which(binary):
        pytest.skip(f"{binary} not on PATH (Debian package prometheus-alertmanager)")


# --- Routing: amtool on both configurations -----------------------------------------------------------


def _receivers(config: Path, labels: dict[str, str]) -> str:
    result = subprocess.run(
        [
            "amtool",
            "config",
            "routes",
            "test",
            f"--config.file={config}",
            *(f"{k}={v}" for k, v in labels.items()),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.integration
def test_alertmanagerconfig_routes_like_the_generated_alertmanager_yml(tmp_path: Path) -> None:
    require("amtool")
    parsed = spec.load_spec(EXAMPLE)
    native = alertmanager.config(parsed)
    original, roundtrip = tmp_path / "original.yml", tmp_path / "from-crd.yml"
    names_only = [{"name": r["name"]} for r in native["receivers"]]  # routing needs no credentials
    original.write_text(yaml.safe_dump({"route": native["route"], "receivers": names_only}))
    roundtrip.write_text(
        yaml.safe_dump({"route": _route(converted(parsed)["route"]), "receivers": names_only})
    )
    channels = ["slack", "email", "slack,email", ""]
    actions = ["", *parsed.actions, ",".join(parsed.actions)]
    seen = set()
    for severity, channel, action in itertools.product(spec.SEVERITIES, channels, actions):
        labels = {"alertname": "X", "tenant": "t1", "severity": severity}
        labels |= {"tenantpulse_channels": channel} if channel else {}
        labels |= {"tenantpulse_actions": action} if action else {}
        expected = _receivers(original, labels)
        assert _receivers(roundtrip, labels) == expected, labels
        seen.add(expected)
    assert len(seen) > 5, f"the label sets should reach many receiver combinations, got {seen}"


# --- Notifications: two real Alertmanagers, one alert ------------------------------------------------


def _local_spec(slack_url_file: Path, smarthost: str) -> spec.Spec:
    """The example spec pointed at the local sinks: no SMTP auth or TLS, no action webhooks, short waits."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["channels"]["slack"]["api_url_file"] = str(slack_url_file)
    email = data["channels"]["email"]
    email.update(smarthost=smarthost, require_tls=False)
    email.pop("auth_username"), email.pop("auth_password_file")
    data["actions"] = {}
    for alert in data["alerts"] + data["ml_alerts"] + data["slos"]:
        alert.pop("actions", None)
    data["routing"].update(group_wait="1s", group_interval="1s")
    return spec.parse_spec(data)


@pytest.mark.integration
def test_alertmanagerconfig_notifies_exactly_like_the_generated_config(
    tmp_path: Path, webhook_sink: WebhookSink, mail_sink: MailSink
) -> None:
    require("prometheus-alertmanager")
    native_url, crd_url = tmp_path / "native-slack-url", tmp_path / "crd-slack-url"
    native_url.write_text(webhook_sink.url("/native"))
    crd_url.write_text(webhook_sink.url("/crd"))
    parsed = _local_spec(native_url, mail_sink.smarthost)

    native_dir = tmp_path / "native"
    config_file = alertmanager.write_alertmanager(parsed, native_dir)[0]
    crd_dir = tmp_path / "crd"
    crd_dir.mkdir()
    roundtrip = to_native(converted(parsed), {operator.SLACK_URL_KEY: crd_url})
    for receiver in roundtrip["receivers"]:
        for conf in receiver.get("email_configs", []):
            conf["to"] = "crd@example.com"  # tells the two copies apart in the one mail sink
    (crd_dir / "alertmanager.yml").write_text(yaml.safe_dump(roundtrip))

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    alert = {
        "labels": {
            "alertname": "TenantHighErrorRate",
            "tenant": "acme-music",
            "severity": "critical",
            "tenantpulse_channels": "slack,email",
        },
        "annotations": {
            "summary": "High error rate for tenant acme-music",
            "description": "7.5% of tenant acme-music's events are errors (threshold 5%).",
            "runbook_url": "https://runbooks.example.com/tenantpulse/high-error-rate",
            "value": "0.075",
        },
        "startsAt": now,
    }
    with (
        Alertmanager(native_dir, config_file) as native_am,
        Alertmanager(crd_dir, crd_dir / "alertmanager.yml") as crd_am,
    ):
        for am in (native_am, crd_am):
            requests.post(f"{am.url}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()
        wait_until(
            lambda: webhook_sink.payloads("/native") and webhook_sink.payloads("/crd"),
            what="both Slack posts",
        )
        wait_until(lambda: len(mail_sink.received()) >= 2, what="both emails")

    native_slack, crd_slack = webhook_sink.payloads("/native")[0], webhook_sink.payloads("/crd")[0]
    for payload in (native_slack, crd_slack):  # Alertmanager's default fallback names its own URL
        payload["attachments"][0].pop("fallback")
    assert crd_slack == native_slack
    attachment = native_slack["attachments"][0]
    assert "acme-music" in attachment["title"] and "TenantHighErrorRate" in attachment["title"]
    assert "0.075" in attachment["text"] and "runbooks.example.com" in attachment["text"]
    assert native_slack["channel"] == "#oncall-page"

    mails = {m["To"]: m for m in mail_sink.received()}
    native_mail, crd_mail = mails[parsed.email.to], mails["crd@example.com"]
    assert (
        crd_mail["Subject"] == native_mail["Subject"] == "[FIRING] TenantHighErrorRate for tenant acme-music"
    )
    assert html_body(crd_mail) == html_body(native_mail)
    assert "acme-music" in html_body(native_mail)
