"""The alert spec: YAML (or the same dict from Python) parsed into checked dataclasses.

Every mistake is reported as a ``SpecError`` (``kernel.errors``, built by ``alert_error``) naming the
alert, the field and the valid choices (and the file, from ``load_spec``), so an SRE fixes the spec
from the message alone and the CLI/API never show a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenantpulse.alert_rules import burn, foreign_slo
from tenantpulse.alert_rules.conditions import Condition, ConditionError, parse_condition
from tenantpulse.alert_rules.templating import TemplateError, check_template, value_template
from tenantpulse.conventions import catalog, indicators
from tenantpulse.conventions.sensitivity import SENSITIVITY as SCORE_THRESHOLDS
from tenantpulse.kernel.durations import is_prometheus_duration
from tenantpulse.kernel.errors import SpecError, UsageError
from tenantpulse.kernel.yamlfile import read_yaml

SEVERITIES = ("critical", "warning", "info")
CHANNELS = ("slack", "email")
SENSITIVITIES = {"high": "1m", "medium": "5m", "low": "15m"}
"""Anomaly alerts: a more sensitive alert waits less before firing."""

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ACTION_RE = re.compile(r"^[a-z][a-z0-9_]*$")
SLO_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
TOP_LEVEL = frozenset({"defaults", "channels", "actions", "routing", "alerts", "ml_alerts", "slos"})
# The dashboards spec's top-level keys (``grafana.spec.TOP_LEVEL``, which cannot be imported here: grafana
# imports this module; a test keeps the two equal), to say "this is a dashboards spec" instead of
# "unknown field" when one is handed to the alert generators.
DASHBOARDS_TOP_LEVEL = frozenset({"grafana", "realtime", "dashboards", "slo_spec"})


def alert_error(alert: str | None, field: str | None, reason: str) -> SpecError:
    """A ``SpecError`` in ``alert`` (its name, or ``alerts[i]`` before it has one; None: the whole spec)."""
    return SpecError(field, reason, f"alert {alert!r}" if alert else None, item=alert)


def seconds(duration: str) -> float:
    """Seconds in a Prometheus duration such as ``1h30m`` (already validated)."""
    return sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+)(ms|y|w|d|h|m|s)", duration))


@dataclass(frozen=True)
class SlackChannel:
    api_url_file: str
    channel: str | None = None
    channel_by_severity: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EmailChannel:
    to: str
    sender: str
    smarthost: str
    auth_username: str | None = None
    auth_password_file: str | None = None
    require_tls: bool = True


@dataclass(frozen=True)
class Routing:
    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"
    repeat_by_severity: dict[str, str] = field(default_factory=dict)
    default_receiver: str | None = None  # where alerts without the bundle's routing labels go


@dataclass(frozen=True)
class NoData:
    """Alert when a tenant's series had samples within ``lookback`` but none within ``window``."""

    window: str = "10m"
    lookback: str = "1d"
    for_: str = "5m"
    severity: str = "warning"


@dataclass(frozen=True)
class ExprTestInputs:
    """Hand-written promtool inputs for an alert whose inputs cannot be synthesised (raw ``expr``)."""

    firing: tuple[dict[str, str], ...]
    quiet: tuple[dict[str, str], ...]
    tenant: str
    value: float


@dataclass(frozen=True)
class AlertSpec:
    name: str
    severity: str
    for_: str
    channels: tuple[str, ...]
    actions: tuple[str, ...]
    tenants: tuple[str, ...]  # empty = all tenants
    summary: str
    description: str
    runbook_url: str
    condition: Condition | None = None
    expr: str | None = None
    test: ExprTestInputs | None = None
    extra_labels: dict[str, str] = field(default_factory=dict)
    no_data: NoData | None = None


@dataclass(frozen=True)
class MlAlertSpec:
    name: str
    model: str  # the indicator the anomaly sidecar scores
    threshold: float
    sensitivity: str
    severity: str
    for_: str
    channels: tuple[str, ...]
    actions: tuple[str, ...]
    tenants: tuple[str, ...]
    summary: str
    description: str
    runbook_url: str


@dataclass(frozen=True)
class SliPart:
    """One side of an SLI ratio: a catalog counter (with matchers) or a named rate indicator."""

    metric: catalog.Metric | None = None
    suffix: str = ""
    match: dict[str, str] = field(default_factory=dict)
    indicator: str | None = None


@dataclass(frozen=True)
class SloSpec:
    name: str
    objective: float
    kind: str  # "error" (error/total) or "good" (good/total)
    part: SliPart  # the error or the good events
    total: SliPart
    period: str
    tenants: tuple[str, ...]
    severity_page: str
    severity_ticket: str
    page_for: str
    ticket_for: str
    channels: tuple[str, ...]
    actions: tuple[str, ...]
    runbook_url: str
    burn_rules: tuple[burn.BurnRule, ...] = ()  # page and ticket, derived from the period
    tenant_objectives: dict[str, float] = field(default_factory=dict)  # overrides of ``objective``
    no_data: NoData | None = None

    @property
    def alert_name(self) -> str:
        """``ingest_availability`` -> ``IngestAvailabilityErrorBudgetBurn`` (page and ticket share it)."""
        return _camel(self.name) + "ErrorBudgetBurn"

    @property
    def no_data_name(self) -> str:
        """``ingest_availability`` -> ``IngestAvailabilitySLINoData``."""
        return _camel(self.name) + "SLINoData"


def _camel(snake: str) -> str:
    return "".join(w.capitalize() for w in snake.split("_"))


@dataclass(frozen=True)
class Spec:
    alerts: tuple[AlertSpec, ...]
    ml_alerts: tuple[MlAlertSpec, ...]
    slos: tuple[SloSpec, ...]
    slack: SlackChannel | None
    email: EmailChannel | None
    actions: dict[str, str]  # action name -> webhook URL
    routing: Routing

    def alert_names(self) -> list[str]:
        return (
            [a.name for a in self.alerts]
            + [f"{a.name}NoData" for a in self.alerts if a.no_data]
            + [a.name for a in self.ml_alerts]
            + [s.alert_name for s in self.slos]
            + [s.no_data_name for s in self.slos if s.no_data]
        )


def load_spec(path: str | Path) -> Spec:
    """Read and validate a YAML spec file (the bundle's own, OpenSLO v1 or Sloth ``prometheus/v1``)."""
    try:
        data = read_yaml(path, "spec file")
        converted = foreign_slo.convert(data)
        if converted is None:
            return parse_spec(data)
        try:
            return parse_spec(converted.spec)
        except SpecError as exc:  # name the foreign field, not the converted one
            raise converted.rename(exc) from None
    except SpecError as exc:
        raise exc.within(path) from None
    except UsageError as exc:  # the file itself: its message names it
        raise SpecError(None, str(exc)) from None


def parse_spec(data: Any) -> Spec:
    """Validate a spec dict; the first mistake raises ``SpecError``."""
    if data is None:
        data = {}
    if isinstance(data, dict) and data.keys() & DASHBOARDS_TOP_LEVEL and not data.keys() & TOP_LEVEL:
        raise SpecError(None, "this is a dashboards spec, not an alerts spec")
    _mapping(data, None, "spec", set(TOP_LEVEL))
    defaults = _mapping(
        data.get("defaults", {}), None, "defaults", {"for", "severity", "window", "runbook_base", "tenants"}
    )
    channels = _mapping(data.get("channels", {}), None, "channels", set(CHANNELS))
    slack = _slack(channels["slack"]) if "slack" in channels else None
    email = _email(channels["email"]) if "email" in channels else None
    actions = _actions(data.get("actions", {}))
    routing = _routing(data.get("routing", {}))
    window = _rate_window(
        _duration(defaults.get("window", "5m"), None, "defaults.window"), None, "defaults.window"
    )
    ctx = _Context(
        defaults=defaults,
        channels=tuple(c for c in CHANNELS if c in channels),
        actions=tuple(actions),
        window=window,
    )
    alerts = tuple(_alert(a, i, ctx) for i, a in enumerate(_list(data.get("alerts", []), "alerts")))
    ml_alerts = tuple(
        _ml_alert(a, i, ctx) for i, a in enumerate(_list(data.get("ml_alerts", []), "ml_alerts"))
    )
    slos = tuple(_slo(s, i, ctx) for i, s in enumerate(_list(data.get("slos", []), "slos")))
    spec = Spec(alerts, ml_alerts, slos, slack, email, actions, routing)
    names = spec.alert_names()
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise alert_error(dupes[0], "name", f"duplicate alert name(s) {dupes}: names must be unique")
    return spec


@dataclass(frozen=True)
class _Context:
    defaults: dict[str, Any]
    channels: tuple[str, ...]
    actions: tuple[str, ...]
    window: str


_COMMON = {
    "name",
    "severity",
    "for",
    "channels",
    "actions",
    "tenants",
    "summary",
    "description",
    "runbook_url",
    "labels",
}


def _alert(raw: Any, index: int, ctx: _Context) -> AlertSpec:
    name = _name(raw, index, "alerts")
    _mapping(raw, name, "alert", _COMMON | {"condition", "expr", "test", "no_data"})
    if ("condition" in raw) == ("expr" in raw):
        raise alert_error(
            name, "condition", "give exactly one of 'condition' (indicator language) or 'expr' (raw PromQL)"
        )
    condition = expr = test = None
    if "condition" in raw:
        try:
            condition = parse_condition(_str(raw["condition"], name, "condition"), ctx.window)
        except ConditionError as exc:
            raise alert_error(name, "condition", str(exc)) from None
        for clause in condition.clauses:
            _rate_window(clause.window, name, "condition")
        if "test" in raw:
            raise alert_error(
                name,
                "test",
                "'test' inputs are only for 'expr' alerts (condition alerts get synthesised ones)",
            )
    else:
        expr = _str(raw["expr"], name, "expr")
        if "test" not in raw:
            raise alert_error(
                name,
                "test",
                "raw PromQL alerts need 'test: {firing: [...], quiet: [...], tenant: T, value: V}' inputs "
                "for their generated promtool test (they cannot be synthesised from PromQL)",
            )
        test = _test_inputs(raw["test"], name)
    unit = indicators.get(condition.groups[0][0].indicator).unit if condition else ""
    common = _common(raw, name, ctx, f"{name} for tenant {{{{ $labels.tenant }}}}", value_template(unit))
    labels = _mapping(raw.get("labels", {}), name, "labels", None)
    for k, v in labels.items():
        if (
            not NAME_RE.match(str(k))
            or k in ("severity", "tenant", "alertname")
            or k.startswith("tenantpulse_")
        ):
            raise alert_error(name, "labels", f"label name {k!r} is reserved or invalid")
        if not isinstance(v, str):
            raise alert_error(name, "labels", f"label {k!r} must be a string")
    no_data = None
    if raw.get("no_data", False) is not False:
        if condition is None:
            raise alert_error(
                name,
                "no_data",
                "no_data needs a 'condition' (its indicator's series); raw 'expr' alerts cannot",
            )
        no_data = _no_data(raw["no_data"], name)
    return AlertSpec(
        condition=condition, expr=expr, test=test, extra_labels=dict(labels), no_data=no_data, **common
    )


def _ml_alert(raw: Any, index: int, ctx: _Context) -> MlAlertSpec:
    name = _name(raw, index, "ml_alerts")
    _mapping(raw, name, "ml alert", (_COMMON - {"labels"}) | {"model", "threshold", "sensitivity"})
    model = _str(raw.get("model", ""), name, "model")
    if model not in indicators.INDICATORS:
        raise alert_error(
            name,
            "model",
            f"unknown model indicator {model!r}; valid: {', '.join(sorted(indicators.INDICATORS))}",
        )
    sensitivity = raw.get("sensitivity", "medium")
    if sensitivity not in SENSITIVITIES:
        raise alert_error(
            name, "sensitivity", f"unknown sensitivity {sensitivity!r}; valid: {', '.join(SENSITIVITIES)}"
        )
    threshold = _number(raw.get("threshold", SCORE_THRESHOLDS["medium"]), name, "threshold")
    if not 0 < threshold < 1:
        raise alert_error(
            name,
            "threshold",
            f"threshold {threshold} must be in (0, 1): the anomaly score is calibrated to [0, 1]",
        )
    summary = f"Unusual {model} for tenant {{{{ $labels.tenant }}}}"
    score = '{{ printf "%.2f" $value }}'
    common = _common({"for": SENSITIVITIES[sensitivity], **raw}, name, ctx, summary, score)
    return MlAlertSpec(model=model, threshold=threshold, sensitivity=sensitivity, **common)


def _slo(raw: Any, index: int, ctx: _Context) -> SloSpec:
    name = _str(_mapping(raw, None, f"slos[{index}]", None).get("name", ""), None, f"slos[{index}].name")
    if not SLO_NAME_RE.match(name):
        raise alert_error(f"slos[{index}]", "name", f"SLO name {name!r} must match {SLO_NAME_RE.pattern}")
    allowed = {
        "name",
        "objective",
        "indicator",
        "period",
        "tenants",
        "severity",
        "for",
        "channels",
        "actions",
        "runbook_url",
        "tenant_objectives",
        "no_data",
    }
    _mapping(raw, name, "slo", allowed)
    objective = _number(raw.get("objective"), name, "objective")
    if not 0 < objective < 1:
        raise alert_error(name, "objective", f"objective {objective} must be a ratio in (0, 1), e.g. 0.999")
    ind = _mapping(raw.get("indicator"), name, "indicator", {"error", "good", "total"})
    kinds = [k for k in ("error", "good") if k in ind]
    if len(kinds) != 1 or "total" not in ind:
        raise alert_error(name, "indicator", "indicator needs 'total' and exactly one of 'error' or 'good'")
    part = _sli_part(ind[kinds[0]], name, f"indicator.{kinds[0]}")
    total = _sli_part(ind["total"], name, "indicator.total")
    if (part.indicator is None) != (total.indicator is None):
        raise alert_error(
            name, "indicator", "use two named indicators or two catalog metrics, not one of each"
        )
    if part.indicator and total.indicator:
        units = {indicators.get(part.indicator).unit, indicators.get(total.indicator).unit}
        if len(units) != 1 or not next(iter(units)).endswith(("/s", "/min")):
            raise alert_error(
                name,
                "indicator",
                f"{kinds[0]} and total must be rates in the same unit (got {sorted(units)}), "
                "e.g. errors_per_second / request_rate",
            )
    severity = _mapping(raw.get("severity", {}), name, "severity", {"page", "ticket"})
    for_ = _mapping(raw.get("for", {}), name, "for", {"page", "ticket"})
    page_sev = _choice(severity.get("page", "critical"), SEVERITIES, name, "severity.page")
    ticket_sev = _choice(severity.get("ticket", "warning"), SEVERITIES, name, "severity.ticket")
    period = _duration(raw.get("period", "30d"), name, "period")
    try:
        rules = burn.burn_rules(seconds(period))
    except burn.BurnError as exc:
        raise alert_error(name, "period", str(exc)) from None
    overrides = _tenant_objectives(raw.get("tenant_objectives", {}), name)
    for fld, value in (
        ("objective", objective),
        *((f"tenant_objectives.{t}", o) for t, o in overrides.items()),
    ):
        try:
            burn.check_objective(value, rules)
        except burn.BurnError as exc:
            raise alert_error(name, fld, str(exc)) from None
    no_data = raw.get("no_data", True)
    return SloSpec(
        name=name,
        objective=objective,
        kind=kinds[0],
        part=part,
        total=total,
        period=period,
        tenants=_tenants(raw.get("tenants", ctx.defaults.get("tenants", "all")), name),
        severity_page=page_sev,
        severity_ticket=ticket_sev,
        page_for=_duration(for_.get("page", "2m"), name, "for.page"),
        ticket_for=_duration(for_.get("ticket", "15m"), name, "for.ticket"),
        channels=_subset(raw.get("channels", list(ctx.channels)), ctx.channels, name, "channels"),
        actions=_subset(raw.get("actions", []), ctx.actions, name, "actions"),
        runbook_url=_runbook(raw, name, ctx),
        burn_rules=rules,
        tenant_objectives=overrides,
        no_data=None if no_data is False else _no_data({} if no_data is True else no_data, name),
    )


def _tenant_objectives(raw: Any, slo: str) -> dict[str, float]:
    """``{tenant: objective}``: tenants whose objective differs from the SLO's."""
    out = {}
    for tenant, value in _mapping(raw, slo, "tenant_objectives", None).items():
        fld = f"tenant_objectives.{tenant}"
        if not isinstance(tenant, str) or not catalog.valid_tenant_id(tenant):
            raise alert_error(
                slo, fld, f"invalid tenant id {tenant!r}: must match {catalog.TENANT_ID_PATTERN}"
            )
        objective = _number(value, slo, fld)
        if not 0 < objective < 1:
            raise alert_error(slo, fld, f"objective {objective} must be a ratio in (0, 1), e.g. 0.9999")
        out[tenant] = objective
    return out


def _no_data(raw: Any, alert: str) -> NoData:
    """``true`` (the defaults) or ``{window, lookback, for, severity}``."""
    if raw is True:
        raw = {}
    m = _mapping(raw, alert, "no_data", {"window", "lookback", "for", "severity"})
    d = NoData()
    nd = NoData(
        window=_rate_window(
            _duration(m.get("window", d.window), alert, "no_data.window"), alert, "no_data.window"
        ),
        lookback=_duration(m.get("lookback", d.lookback), alert, "no_data.lookback"),
        for_=_duration(m.get("for", d.for_), alert, "no_data.for"),
        severity=_choice(m.get("severity", d.severity), SEVERITIES, alert, "no_data.severity"),
    )
    if seconds(nd.lookback) < seconds(nd.window) + seconds(nd.for_) + 120:
        raise alert_error(
            alert,
            "no_data.lookback",
            f"lookback {nd.lookback} must be at least window + for + 2m ({nd.window} + {nd.for_} + 2m): a tenant "
            "silent for longer than the lookback counts as gone, so a shorter one resolves before it fires",
        )
    return nd


def _sli_part(raw: Any, alert: str, where: str) -> SliPart:
    """``request_rate`` (a named indicator) or ``{metric: <catalog counter>, match: {label: value}}``."""
    if isinstance(raw, str):
        if raw not in indicators.INDICATORS:
            raise alert_error(
                alert, where, f"unknown indicator {raw!r}; valid: {', '.join(sorted(indicators.INDICATORS))}"
            )
        return SliPart(indicator=raw)
    m = _mapping(raw, alert, where, {"metric", "match"})
    name = m.get("metric")
    counters = sorted(n for n, x in catalog.BY_NAME.items() if x.type in ("counter", "histogram"))
    metric = catalog.BY_NAME.get(name) if isinstance(name, str) else None
    base = None
    if metric is None and isinstance(name, str):
        for suffix in ("bucket", "count"):
            base = catalog.BY_NAME.get(name.removesuffix(f"_{suffix}"))
            if base is not None and base.type == "histogram" and name.endswith(f"_{suffix}"):
                metric = base
                break
    if metric is None or metric.type not in ("counter", "histogram"):
        raise alert_error(
            alert,
            f"{where}.metric",
            f"unknown counter metric {name!r}; valid: {', '.join(counters)} (histograms as _bucket/_count)",
        )
    suffix = str(name).rsplit("_", 1)[1] if metric.type == "histogram" and name != metric.name else ""
    if metric.type == "histogram" and not suffix:
        raise alert_error(
            alert,
            f"{where}.metric",
            f"use {metric.name}_bucket (with match: {{le: ...}}) or {metric.name}_count",
        )
    match = {str(k): str(v) for k, v in _mapping(m.get("match", {}), alert, f"{where}.match", None).items()}
    if any(v[:1] in ("=", "!") for v in match.values()):
        raise alert_error(alert, f"{where}.match", "SLO matchers take exact label values (no =~, != or !~)")
    try:
        metric.selector(suffix, **match)
    except ValueError as exc:
        raise alert_error(alert, f"{where}.match", str(exc)) from None
    return SliPart(metric=metric, suffix=suffix, match=match)


def _common(
    raw: dict[str, Any], name: str, ctx: _Context, default_summary: str, value: str
) -> dict[str, Any]:
    d = ctx.defaults
    summary = _str(raw.get("summary", default_summary), name, "summary")
    default_description = f"{name}: value {value} for tenant {{{{ $labels.tenant }}}}."
    description = _str(raw.get("description", default_description), name, "description")
    for fld, text in (("summary", summary), ("description", description)):
        try:
            check_template(text)
        except TemplateError as exc:
            raise alert_error(name, fld, str(exc)) from None
    return {
        "name": name,
        "severity": _choice(raw.get("severity", d.get("severity", "warning")), SEVERITIES, name, "severity"),
        "for_": _duration(raw.get("for", d.get("for", "5m")), name, "for"),
        "channels": _subset(raw.get("channels", list(ctx.channels)), ctx.channels, name, "channels"),
        "actions": _subset(raw.get("actions", []), ctx.actions, name, "actions"),
        "tenants": _tenants(raw.get("tenants", d.get("tenants", "all")), name),
        "summary": summary,
        "description": description,
        "runbook_url": _runbook(raw, name, ctx),
    }


def _runbook(raw: dict[str, Any], name: str, ctx: _Context) -> str:
    if "runbook_url" in raw:
        return _str(raw["runbook_url"], name, "runbook_url")
    base = ctx.defaults.get("runbook_base")
    if base is None:
        raise alert_error(name, "runbook_url", "missing runbook_url (or set defaults.runbook_base)")
    return f"{_str(base, None, 'defaults.runbook_base').rstrip('/')}/{name}"


def _test_inputs(raw: Any, alert: str) -> ExprTestInputs:
    m = _mapping(raw, alert, "test", {"firing", "quiet", "tenant", "value"})
    parts = {}
    for key in ("firing", "quiet"):
        series = _list(m.get(key, []), f"test.{key}", alert)
        for s in series:
            if not isinstance(s, dict) or set(s) != {"series", "values"}:
                raise alert_error(
                    alert, f"test.{key}", "each input is {series: 'name{labels}', values: '0+1x30'}"
                )
        parts[key] = tuple({"series": str(s["series"]), "values": str(s["values"])} for s in series)
    if not parts["firing"]:
        raise alert_error(alert, "test.firing", "needs at least one firing input series")
    return ExprTestInputs(
        parts["firing"],
        parts["quiet"],
        _str(m.get("tenant", ""), alert, "test.tenant"),
        _number(m.get("value"), alert, "test.value"),
    )


def _slack(raw: Any) -> SlackChannel:
    m = _mapping(raw, None, "channels.slack", {"api_url_file", "channel", "channel_by_severity"})
    by_sev = _mapping(
        m.get("channel_by_severity", {}), None, "channels.slack.channel_by_severity", set(SEVERITIES)
    )
    channel = m.get("channel")
    return SlackChannel(
        api_url_file=_str(m.get("api_url_file"), None, "channels.slack.api_url_file"),
        channel=None if channel is None else _str(channel, None, "channels.slack.channel"),
        channel_by_severity={
            k: _str(v, None, f"channels.slack.channel_by_severity.{k}") for k, v in by_sev.items()
        },
    )


def _email(raw: Any) -> EmailChannel:
    m = _mapping(
        raw,
        None,
        "channels.email",
        {"to", "from", "smarthost", "auth_username", "auth_password_file", "require_tls"},
    )
    smarthost = _str(m.get("smarthost"), None, "channels.email.smarthost")
    if not re.match(r"^[^:\s]+:\d+$", smarthost):
        raise alert_error(None, "channels.email.smarthost", f"smarthost {smarthost!r} must be host:port")
    tls = m.get("require_tls", True)
    if not isinstance(tls, bool):
        raise alert_error(None, "channels.email.require_tls", "require_tls must be true or false")
    user, pw = m.get("auth_username"), m.get("auth_password_file")
    return EmailChannel(
        to=_str(m.get("to"), None, "channels.email.to"),
        sender=_str(m.get("from"), None, "channels.email.from"),
        smarthost=smarthost,
        auth_username=None if user is None else _str(user, None, "channels.email.auth_username"),
        auth_password_file=None if pw is None else _str(pw, None, "channels.email.auth_password_file"),
        require_tls=tls,
    )


def _actions(raw: Any) -> dict[str, str]:
    out = {}
    for name, conf in _mapping(raw, None, "actions", None).items():
        if not ACTION_RE.match(str(name)):
            raise alert_error(None, f"actions.{name}", f"action name {name!r} must match {ACTION_RE.pattern}")
        url = _str(_mapping(conf, None, f"actions.{name}", {"url"}).get("url"), None, f"actions.{name}.url")
        if not re.match(r"^https?://", url):
            raise alert_error(
                None, f"actions.{name}.url", f"webhook url {url!r} must start with http:// or https://"
            )
        out[str(name)] = url
    return out


def _routing(raw: Any) -> Routing:
    m = _mapping(
        raw,
        None,
        "routing",
        {"group_wait", "group_interval", "repeat_interval", "repeat_by_severity", "default_receiver"},
    )
    default = m.get("default_receiver")
    by_sev = _mapping(m.get("repeat_by_severity", {}), None, "routing.repeat_by_severity", set(SEVERITIES))
    return Routing(
        group_wait=_duration(m.get("group_wait", "30s"), None, "routing.group_wait"),
        group_interval=_duration(m.get("group_interval", "5m"), None, "routing.group_interval"),
        repeat_interval=_duration(m.get("repeat_interval", "4h"), None, "routing.repeat_interval"),
        repeat_by_severity={
            k: _duration(v, None, f"routing.repeat_by_severity.{k}") for k, v in by_sev.items()
        },
        default_receiver=None if default is None else _str(default, None, "routing.default_receiver"),
    )


# --- small checkers: each raises SpecError naming alert + field ------------------------------------


def _name(raw: Any, index: int, section: str) -> str:
    where = f"{section}[{index}]"
    name = _mapping(raw, where, "alert", None).get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise alert_error(
            where, "name", f"name {name!r} must be an identifier like HighErrorRate ({NAME_RE.pattern})"
        )
    return name


def _mapping(raw: Any, alert: str | None, where: str, allowed: set[str] | None) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise alert_error(
            alert, where if alert is None else None, f"{where} must be a mapping, got {type(raw).__name__}"
        )
    if allowed is not None:
        unknown = sorted(set(map(str, raw)) - allowed)
        if unknown:
            fld = unknown[0] if alert else f"{where}.{unknown[0]}"
            raise alert_error(
                alert, fld, f"unknown field {unknown[0]!r}; valid: {', '.join(sorted(allowed))}"
            )
    return raw


def _list(raw: Any, where: str, alert: str | None = None) -> list[Any]:
    if not isinstance(raw, list):
        raise alert_error(alert, where, f"{where} must be a list, got {type(raw).__name__}")
    return raw


def _str(raw: Any, alert: str | None, fld: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise alert_error(alert, fld, f"must be a non-empty string, got {raw!r}")
    return raw


def _number(raw: Any, alert: str | None, fld: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise alert_error(alert, fld, f"must be a number, got {raw!r}")
    return float(raw)


def _choice(raw: Any, choices: tuple[str, ...], alert: str | None, fld: str) -> str:
    if raw not in choices:
        raise alert_error(alert, fld, f"unknown {fld.split('.')[0]} {raw!r}; valid: {', '.join(choices)}")
    return raw


def _duration(raw: Any, alert: str | None, fld: str) -> str:
    if not is_prometheus_duration(raw):
        raise alert_error(
            alert, fld, f"bad duration {raw!r}; use a Prometheus duration such as 30s, 5m, 1h30m, 7d"
        )
    return raw


def _rate_window(window: str, alert: str | None, fld: str) -> str:
    """Refuse rate windows the generated promtool tests cannot check (see ``burn.MIN_WINDOW_S``)."""
    if seconds(window) < burn.MIN_WINDOW_S:
        raise alert_error(
            alert,
            fld,
            f"window {window} is shorter than 1m: promtool's tests sample every 60s, so rate() over it "
            "holds one sample and the generated tests could not check the rule",
        )
    return window


def _subset(raw: Any, valid: tuple[str, ...], alert: str, fld: str) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
        raise alert_error(
            alert, fld, f"must be a list of names; valid: {', '.join(valid) or '(none configured)'}"
        )
    for x in items:
        if x not in valid:
            kind = "channel" if fld == "channels" else "action"
            raise alert_error(
                alert, fld, f"unknown {kind} {x!r}; valid: {', '.join(valid) or '(none configured)'}"
            )
    return tuple(dict.fromkeys(items))


def _tenants(raw: Any, alert: str) -> tuple[str, ...]:
    if raw == "all":
        return ()
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(t, str) for t in items):
        raise alert_error(alert, "tenants", "tenants must be 'all' or a non-empty list of tenant ids")
    bad = [t for t in items if not catalog.valid_tenant_id(t)]
    if bad:
        raise alert_error(
            alert, "tenants", f"invalid tenant id(s) {bad}: must match {catalog.TENANT_ID_PATTERN}"
        )
    return tuple(dict.fromkeys(items))
