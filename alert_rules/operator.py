"""The generated Alertmanager configuration as a Prometheus Operator ``AlertmanagerConfig`` (v1alpha1).

The routing tree, receivers and inhibitions are the ones ``tenantpulse generate alertmanager`` writes
to ``alertmanager.yml``; this module only translates that native configuration into the custom
resource's shape (camelCase fields, structured matchers, secrets by reference). So routing is decided
in one place, and the Helm chart and a plain Alertmanager always agree.

Secrets never appear in the object: the Slack webhook URL and the SMTP password become references to
the keys ``slack-webhook-url`` and ``smtp-password`` of a Secret whose name is left empty here; the
Helm chart fills in its release's Secret.
"""

from __future__ import annotations

import re
from typing import Any

from tenantpulse.alert_rules import alertmanager
from tenantpulse.alert_rules.spec import Spec

SLACK_URL_KEY = "slack-webhook-url"
SMTP_PASSWORD_KEY = "smtp-password"

API_VERSION = "monitoring.coreos.com/v1alpha1"
KIND = "AlertmanagerConfig"

# Native (alertmanager.yml) field -> AlertmanagerConfig field, per section. A field missing from these
# maps is refused, so a new option in the generator cannot be dropped without notice.
ROUTE_FIELDS = {
    "receiver": "receiver",
    "group_by": "groupBy",
    "group_wait": "groupWait",
    "group_interval": "groupInterval",
    "repeat_interval": "repeatInterval",
    "continue": "continue",
    "mute_time_intervals": "muteTimeIntervals",
    "active_time_intervals": "activeTimeIntervals",
}
SLACK_FIELDS = {
    "channel": "channel",
    "send_resolved": "sendResolved",
    "title": "title",
    "title_link": "titleLink",
    "text": "text",
    "pretext": "pretext",
    "fallback": "fallback",
    "color": "color",
    "footer": "footer",
    "username": "username",
    "icon_url": "iconURL",
    "icon_emoji": "iconEmoji",
    "image_url": "imageURL",
    "thumb_url": "thumbURL",
    "link_names": "linkNames",
    "short_fields": "shortFields",
    "mrkdwn_in": "mrkdwnIn",
    "callback_id": "callbackId",
}
EMAIL_FIELDS = {
    "to": "to",
    "from": "from",
    "smarthost": "smarthost",
    "hello": "hello",
    "auth_username": "authUsername",
    "auth_identity": "authIdentity",
    "require_tls": "requireTLS",
    "send_resolved": "sendResolved",
    "html": "html",
    "text": "text",
}
WEBHOOK_FIELDS = {"url": "url", "send_resolved": "sendResolved", "max_alerts": "maxAlerts"}
# Native label matcher: name, operator, quoted or bare value ("severity=\"critical\"", "tenant=~a|b").
_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(.*?))\s*$')


# Go template actions: {{- words -}} with optional trim markers; the control words that take an {{ end }}.
_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)
_BLOCKS = ("if", "range", "with", "block")
_CALL = re.compile(r'\{\{-?\s*template\s+"([^"]+)"\s+\.\s*-?\}\}')


class ConversionError(ValueError):
    """The native configuration uses something the AlertmanagerConfig resource cannot express."""


def alertmanager_config(parsed: Spec, name: str = "tenantpulse") -> dict[str, Any]:
    """The alert spec's receivers, routes and inhibitions as an ``AlertmanagerConfig`` object, with the
    notification templates inlined (the resource cannot load template files)."""
    native = inline_templates(alertmanager.config(parsed), alertmanager.template_source().read_text())
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "spec": spec(native)}


def spec(native: dict[str, Any]) -> dict[str, Any]:
    """The ``spec`` of the AlertmanagerConfig: route, receivers and inhibit rules.

    Template files cannot travel with the resource: call :func:`inline_templates` first.
    """
    if "route" not in native or "receivers" not in native:
        raise ConversionError("the Alertmanager configuration needs a route and receivers")
    _copy(native, {}, "the configuration", {"route", "receivers", "inhibit_rules"})
    out: dict[str, Any] = {
        "route": route(native["route"]),
        "receivers": [receiver(r) for r in native["receivers"]],
    }
    inhibit = [inhibit_rule(r) for r in native.get("inhibit_rules", [])]
    if inhibit:
        out["inhibitRules"] = inhibit
    return out


def template_defines(text: str) -> dict[str, str]:
    """The ``{{ define "name" }}`` bodies of a Go template file, with their trim markers applied."""
    defines: dict[str, str] = {}
    stack: list[tuple[str | None, int, bool]] = []  # (define name or None, body start, trim body start)
    for action in _ACTION.finditer(text):
        trim_before, words, trim_after = action.groups()
        word = words.split(None, 1)[0] if words else ""
        if word == "define":
            named = re.match(r'define\s+"([^"]+)"', words)
            if not named:
                raise ConversionError(f"cannot read template action {action.group(0)!r}")
            stack.append((named.group(1), action.end(), trim_after == "-"))
        elif word in _BLOCKS:
            stack.append((None, action.end(), False))
        elif word == "end":
            if not stack:
                raise ConversionError("unbalanced {{ end }} in the template file")
            name, start, trim_start = stack.pop()
            if name is not None:
                body = text[start : action.start()]
                body = body.lstrip() if trim_start else body
                defines[name] = body.rstrip() if trim_before == "-" else body
    if stack:
        raise ConversionError("a define, if, range or with is not closed in the template file")
    return defines


def inline_templates(native: dict[str, Any], template_text: str) -> dict[str, Any]:
    """The configuration with every ``{{ template "name" . }}`` replaced by that template's body.

    An AlertmanagerConfig cannot load template files (only the Alertmanager's own configuration
    can), so the notification texts carry the template bodies themselves: the same output, no file.
    """
    defines = template_defines(template_text)

    def expand(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: expand(v) for k, v in value.items()}
        if isinstance(value, list):
            return [expand(v) for v in value]
        if isinstance(value, str):
            return _CALL.sub(lambda m: expand(_define(defines, m.group(1))), value)
        return value

    return {k: expand(v) for k, v in native.items() if k != "templates"}


def _define(defines: dict[str, str], name: str) -> str:
    if name not in defines:
        raise ConversionError(f"template {name!r} is not defined in the template file")
    return defines[name]


def matcher(text: str) -> dict[str, str]:
    """``severity="critical"`` -> ``{name: severity, value: critical}``; ``a=~"b"`` -> ``{..., matchType: "=~"}``.

    Equality is the CRD's default (``matchType`` empty and ``regex`` false), so ``=`` is left out: Helm's
    ``toYaml`` writes it bare, which YAML 1.1 loaders (PyYAML) refuse as the obsolete ``!!value`` tag.
    """
    found = _MATCHER.match(text)
    if not found:
        raise ConversionError(f"cannot read label matcher {text!r}")
    name, op, quoted, bare = found.groups()
    value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
    return _entry(name, value, op)


def _entry(name: str, value: str, op: str) -> dict[str, str]:
    return {"name": name, "value": value} if op == "=" else {"name": name, "value": value, "matchType": op}


def _matchers(node: dict[str, Any], key: str, legacy: tuple[str, str]) -> list[dict[str, str]]:
    """Matchers from the ``matchers`` list and the deprecated ``match`` / ``match_re`` maps."""
    out = [matcher(m) for m in node.get(key, [])]
    out += [_entry(k, str(v), "=") for k, v in node.get(legacy[0], {}).items()]
    out += [_entry(k, str(v), "=~") for k, v in node.get(legacy[1], {}).items()]
    return out


def _copy(node: dict[str, Any], fields: dict[str, str], where: str, handled: set[str]) -> dict[str, Any]:
    unknown = set(node) - set(fields) - handled
    if unknown:
        raise ConversionError(f"{where}: no AlertmanagerConfig equivalent for {sorted(unknown)}")
    return {fields[k]: v for k, v in node.items() if k in fields}


def route(node: dict[str, Any], where: str = "route") -> dict[str, Any]:
    out = _copy(node, ROUTE_FIELDS, where, {"matchers", "match", "match_re", "routes"})
    found = _matchers(node, "matchers", ("match", "match_re"))
    if found:
        out["matchers"] = found
    children = node.get("routes", [])
    if children:
        out["routes"] = [route(c, f"{where}.routes[{i}]") for i, c in enumerate(children)]
    return out


def _secret(key: str) -> dict[str, str]:
    """A reference to a key of the chart's Secret; the chart sets the name."""
    return {"name": "", "key": key}


def receiver(node: dict[str, Any]) -> dict[str, Any]:
    name = node["name"]
    where = f"receiver {name!r}"
    handled = {"name", "slack_configs", "email_configs", "webhook_configs"}
    _copy(node, {}, where, handled)
    out: dict[str, Any] = {"name": name}
    slack = [_slack(c, where) for c in node.get("slack_configs", [])]
    email = [_email(c, where) for c in node.get("email_configs", [])]
    webhook = [_webhook(c, where) for c in node.get("webhook_configs", [])]
    for key, configs in (("slackConfigs", slack), ("emailConfigs", email), ("webhookConfigs", webhook)):
        if configs:
            out[key] = configs
    return out


def _slack(node: dict[str, Any], where: str) -> dict[str, Any]:
    out = _copy(node, SLACK_FIELDS, f"{where} slack", {"api_url", "api_url_file", "fields", "actions"})
    out["apiURL"] = _secret(SLACK_URL_KEY)  # a URL given inline is a secret too: it moves to the Secret
    if node.get("fields"):
        out["fields"] = [{_camel(k): v for k, v in f.items()} for f in node["fields"]]
    if node.get("actions"):
        out["actions"] = [{_camel(k): v for k, v in a.items()} for a in node["actions"]]
    return out


def _email(node: dict[str, Any], where: str) -> dict[str, Any]:
    out = _copy(node, EMAIL_FIELDS, f"{where} email", {"auth_password", "auth_password_file", "headers"})
    if "auth_password" in node or "auth_password_file" in node:
        out["authPassword"] = _secret(SMTP_PASSWORD_KEY)
    if node.get("headers"):
        out["headers"] = [{"key": k, "value": str(v)} for k, v in sorted(node["headers"].items())]
    return out


def _webhook(node: dict[str, Any], where: str) -> dict[str, Any]:
    return _copy(node, WEBHOOK_FIELDS, f"{where} webhook", set())


def inhibit_rule(node: dict[str, Any]) -> dict[str, Any]:
    where = "inhibit rule"
    _copy(
        node,
        {},
        where,
        {
            "source_matchers",
            "target_matchers",
            "source_match",
            "source_match_re",
            "target_match",
            "target_match_re",
            "equal",
        },
    )
    out: dict[str, Any] = {
        "sourceMatch": _matchers(node, "source_matchers", ("source_match", "source_match_re")),
        "targetMatch": _matchers(node, "target_matchers", ("target_match", "target_match_re")),
    }
    if node.get("equal"):
        out["equal"] = list(node["equal"])
    return out


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)
