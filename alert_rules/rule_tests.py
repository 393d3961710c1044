"""Generated ``promtool test rules`` cases: for every alert, inputs that make it fire and inputs that don't.

Inputs are synthesised from a small traffic *profile* per tenant (events per minute by type, a
latency, revenue, gauges). Each indicator has a model here that reads and sets the profile the way
its PromQL in ``exporters.indicators`` reads the series, so the generator can search for a profile
that makes the condition true (or false) and predict ``$value`` for the expected annotations.
promtool then checks the prediction against the real rule evaluation.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tenantpulse.alert_rules import anomaly as anomaly_rules
from tenantpulse.alert_rules import slo as slo_rules
from tenantpulse.alert_rules import threshold
from tenantpulse.alert_rules.conditions import Clause, Condition
from tenantpulse.alert_rules.labels import routing_labels
from tenantpulse.alert_rules.spec import (
    AlertSpec,
    MlAlertSpec,
    NoData,
    SliPart,
    SloSpec,
    Spec,
    alert_error,
    seconds,
)
from tenantpulse.alert_rules.templating import render
from tenantpulse.conventions import catalog as c
from tenantpulse.conventions import indicators as ind

INTERVAL_S = 60
FIRING_TENANT = "tenant-a"
OTHER_TENANT = "tenant-b"
OUT_OF_SCOPE_TENANT = "tenant-out-of-scope"
OBSERVATIONS_PER_MIN = 60.0


@dataclass
class Profile:
    """One tenant's steady traffic, per minute; every duration observation equals ``latency``."""

    events: dict[str, float] = field(
        default_factory=lambda: {
            "request": 480.0,
            ind.ERROR_EVENT: 0.0,
            ind.PLAY_EVENT: 96.0,
            ind.SESSION_EVENT: 24.0,
        }
    )
    latency: float = 0.04
    revenue: float = 300.0
    gauges: dict[str, float] = field(
        default_factory=lambda: {
            "active_users": 1000.0,
            "conversion_rate": 0.05,
            "unique_users_1h": 500.0,
            "unique_users_1d": 5000.0,
        }
    )

    def total(self) -> float:
        return sum(self.events.values())


@dataclass(frozen=True)
class Model:
    value: Callable[[Profile], float]
    set: Callable[[Profile, float], None]
    upper: float = float("inf")  # largest meaningful value (ratios: 1)


def _set_event(kind: str) -> Callable[[Profile, float], None]:
    def setter(p: Profile, per_min: float) -> None:
        p.events[kind] = per_min

    return setter


def _scale_events(p: Profile, per_s: float) -> None:
    total = p.total()
    for k in p.events:
        p.events[k] = p.events[k] * per_s * 60 / total if total else (per_s * 60 if k == "request" else 0.0)


def _set_error_ratio(p: Profile, ratio: float) -> None:
    total = p.total() or 600.0
    others = {k: v for k, v in p.events.items() if k != ind.ERROR_EVENT}
    rest = sum(others.values())
    for k, v in others.items():
        p.events[k] = (1 - ratio) * total * (v / rest if rest else (1.0 if k == "request" else 0.0))
    p.events[ind.ERROR_EVENT] = ratio * total


def _quantile(q: float) -> Callable[[Profile], float]:
    """``histogram_quantile`` when every observation falls in the bucket holding ``latency``."""

    def value(p: Profile) -> float:
        bounds = c.EVENT_DURATION.buckets
        upper = next((b for b in bounds if p.latency <= b), None)
        if upper is None:
            return bounds[-1]
        lower = max((b for b in bounds if b < upper), default=0.0)
        return lower + (upper - lower) * q

    return value


def _set_latency(p: Profile, v: float) -> None:
    p.latency = v


def _gauge(name: str) -> Model:
    return Model(
        lambda p: p.gauges[name],
        lambda p, v: p.gauges.__setitem__(name, v),
        1.0 if name == "conversion_rate" else float("inf"),
    )


MODELS: dict[str, Model] = {
    "request_rate": Model(lambda p: p.total() / 60, _scale_events),
    "error_rate": Model(lambda p: p.events[ind.ERROR_EVENT] / p.total(), _set_error_ratio, 1.0),
    "errors_per_second": Model(
        lambda p: p.events[ind.ERROR_EVENT] / 60, lambda p, v: _set_event(ind.ERROR_EVENT)(p, v * 60)
    ),
    "plays_per_minute": Model(lambda p: p.events[ind.PLAY_EVENT], _set_event(ind.PLAY_EVENT)),
    "sessions_per_minute": Model(lambda p: p.events[ind.SESSION_EVENT], _set_event(ind.SESSION_EVENT)),
    "p50_latency": Model(_quantile(0.5), _set_latency),
    "p95_latency": Model(_quantile(0.95), _set_latency),
    "p99_latency": Model(_quantile(0.99), _set_latency),
    "revenue_rate": Model(lambda p: p.revenue / 60, lambda p, v: setattr(p, "revenue", v * 60)),
    "active_users": _gauge("active_users"),
    "conversion_rate": _gauge("conversion_rate"),
    "unique_users_1h": _gauge("unique_users_1h"),
    "unique_users_1d": _gauge("unique_users_1d"),
}


# --- input series -------------------------------------------------------------------------------


def _counter(sel: str, per_min: float, n: int) -> dict[str, str]:
    return {"series": sel, "values": f"0+{per_min!r}x{n}"}


def _constant(sel: str, value: float, n: int) -> dict[str, str]:
    return {"series": sel, "values": f"{value!r}+0x{n}"}


def profile_series(p: Profile, tenant: str, n: int) -> list[dict[str, str]]:
    """promtool input series for one tenant, named from the catalog."""
    out = [_counter(c.EVENTS.selector(tenant=tenant, event_type=k), v, n) for k, v in p.events.items()]
    obs = OBSERVATIONS_PER_MIN
    for b in (*c.EVENT_DURATION.buckets, float("inf")):
        le = "+Inf" if b == float("inf") else repr(b)
        sel = c.EVENT_DURATION.selector("bucket", tenant=tenant, event_type="request", le=le)
        out.append(_counter(sel, obs if p.latency <= b else 0.0, n))
    out.append(_counter(c.EVENT_DURATION.selector("count", tenant=tenant, event_type="request"), obs, n))
    out.append(
        _counter(c.EVENT_DURATION.selector("sum", tenant=tenant, event_type="request"), obs * p.latency, n)
    )
    out.append(_counter(c.REVENUE.selector(tenant=tenant), p.revenue, n))
    out.append(_constant(c.ACTIVE_USERS.selector(tenant=tenant), p.gauges["active_users"], n))
    out.append(_constant(c.CONVERSION.selector(tenant=tenant), p.gauges["conversion_rate"], n))
    for w in ("1h", "1d"):
        out.append(
            _constant(c.UNIQUE_USERS.selector(tenant=tenant, window=w), p.gauges[f"unique_users_{w}"], n)
        )
    return out


# --- solving a condition for a profile --------------------------------------------------------------


def _candidates(clause: Clause, want: bool, upper: float) -> list[float]:
    t = clause.threshold
    bigger = [2 * t, 10 * t, t + 1, t + 10, (t + upper) / 2] if t > 0 else [1.0, 10.0, t + 1]
    smaller = [t / 2, t / 10, t - 1, 0.0]
    go_up = (clause.op in (">", ">=")) == want
    if clause.op == "==":
        options = [t] if want else bigger + smaller
    elif clause.op == "!=":
        options = bigger + smaller if want else [t]
    else:
        options = bigger if go_up else smaller
    return [v for v in options if 0 <= v <= upper]


def _solve(condition: Condition, wants: list[bool | None]) -> Profile | None:
    """A profile where each clause with a wish evaluates to it, or None."""
    p = Profile()
    for _ in range(4):
        missing = False
        for clause, want in zip(condition.clauses, wants, strict=True):
            model = MODELS[clause.indicator]
            if want is None or clause.holds(model.value(p)) == want:
                continue
            missing = True
            for v in _candidates(clause, want, model.upper):
                q = copy.deepcopy(p)
                model.set(q, v)
                if clause.holds(model.value(q)) == want:
                    p = q
                    break
        if not missing:
            return p
    return None


def _wishes(condition: Condition, picks: dict[tuple[int, int], bool]) -> list[bool | None]:
    """Per clause (in ``clauses`` order): the wish at (group, index) in ``picks``, else None."""
    return [picks.get((gi, ci)) for gi, g in enumerate(condition.groups) for ci in range(len(g))]


def solve(alert: str, condition: Condition, firing: bool) -> Profile:
    """Traffic that makes the condition true (one ``and`` group holds) or false (each group has a false clause)."""
    if firing:
        attempts = ({(gi, ci): True for ci in range(len(g))} for gi, g in enumerate(condition.groups))
    else:
        choices = itertools.product(*(range(len(g)) for g in condition.groups))
        attempts = ({(gi, ci): False for gi, ci in enumerate(pick)} for pick in itertools.islice(choices, 64))
    for picks in attempts:
        p = _solve(condition, _wishes(condition, picks))
        if p is not None and condition.holds([_value(p, cl) for cl in condition.clauses]) == firing:
            return p
    raise alert_error(
        alert,
        "condition",
        f"cannot find {'firing' if firing else 'quiet'} test inputs for {condition.text!r}: it looks "
        f"{'never' if firing else 'always'} true (check the thresholds), or use 'expr' with hand-written 'test' inputs",
    )


def firing_value(condition: Condition, p: Profile) -> float:
    """``$value`` of ``A and B or C``: the first clause of the first group that holds (PromQL keeps the left side)."""
    for g in condition.groups:
        values = [_value(p, cl) for cl in g]
        if all(cl.holds(v) for cl, v in zip(g, values, strict=True)):
            return values[0]
    raise AssertionError("firing profile does not fire")


def _value(p: Profile, clause: Clause) -> float:
    return MODELS[clause.indicator].value(p)


# --- test groups ---------------------------------------------------------------------------------


def _eval_minutes(*fors: str, window: str = "0s") -> int:
    """Evaluate once every rate window is full of data (a half-empty window would under-read a rate)
    and the longest ``for`` has passed, with a margin."""
    return int((max(seconds(f) for f in fors) + seconds(window)) // 60) + 10


def _expected(
    labels: dict[str, str],
    annotations: dict[str, str],
    tenant: str,
    value: float,
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    expr_labels = {c.TENANT: tenant, **(extra or {})}
    return {
        "exp_labels": {**labels, c.TENANT: tenant, **(extra or {})},
        "exp_annotations": {k: render(v, expr_labels, value) for k, v in annotations.items()},
    }


def _group(
    name: str, series: list[dict[str, str]], alertname: str, minutes: int, exp: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "name": name,
        "interval": f"{INTERVAL_S}s",
        "input_series": series,
        "alert_rule_test": [{"eval_time": f"{minutes}m", "alertname": alertname, "exp_alerts": exp}],
    }


def _scope(tenants: tuple[str, ...]) -> tuple[str, str | None]:
    """The tenant the case is about, and one outside the alert's scope (None when it covers all)."""
    if not tenants:
        return FIRING_TENANT, None
    return tenants[0], OUT_OF_SCOPE_TENANT if OUT_OF_SCOPE_TENANT not in tenants else None


def threshold_cases(a: AlertSpec) -> list[dict[str, Any]]:
    rule = threshold.rule(a)
    windows = [cl.window for cl in a.condition.clauses] if a.condition else ["0s"]
    minutes = _eval_minutes(a.for_, window=max(windows, key=seconds))
    n = minutes + 5
    tenant, outsider = _scope(a.tenants)
    if a.test is not None:
        firing = list(a.test.firing)
        exp = _expected(rule["labels"], rule["annotations"], a.test.tenant, a.test.value)
        return [
            _group(f"{a.name} fires", firing, a.name, minutes, [exp]),
            _group(f"{a.name} stays quiet", list(a.test.quiet), a.name, minutes, []),
        ]
    assert a.condition is not None
    cond = a.condition
    fire, quiet = solve(a.name, cond, True), solve(a.name, cond, False)
    value = firing_value(cond, fire)
    fire_series = profile_series(fire, tenant, n) + profile_series(quiet, OTHER_TENANT, n)
    quiet_series = profile_series(quiet, tenant, n)
    if outsider:
        fire_series += profile_series(fire, outsider, n)
        quiet_series += profile_series(fire, outsider, n)
    exp = _expected(rule["labels"], rule["annotations"], tenant, value)
    return [
        _group(f"{a.name} fires for {tenant} only", fire_series, a.name, minutes, [exp]),
        _group(f"{a.name} stays quiet", quiet_series, a.name, minutes, []),
    ]


def ml_cases(a: MlAlertSpec) -> list[dict[str, Any]]:
    rule = anomaly_rules.rule(a, routing_labels(a))
    minutes = _eval_minutes(a.for_)
    n = minutes + 5
    tenant, outsider = _scope(a.tenants)
    high, low = (a.threshold + 1) / 2, a.threshold / 2

    def score(t: str, v: float) -> dict[str, str]:
        return _constant(c.ANOMALY_SCORE.selector(tenant=t, **{c.INDICATOR: a.model}), v, n)

    fire = [score(tenant, high), score(OTHER_TENANT, low)] + ([score(outsider, high)] if outsider else [])
    quiet = [score(tenant, low)] + ([score(outsider, high)] if outsider else [])
    exp = _expected(rule["labels"], rule["annotations"], tenant, high)
    return [
        _group(f"{a.name} fires for {tenant} only", fire, a.name, minutes, [exp]),
        _group(f"{a.name} stays quiet", quiet, a.name, minutes, []),
        _one_peak(a, tenant, high, low, exp),
    ]


def _one_peak(a: MlAlertSpec, tenant: str, high: float, low: float, exp: dict[str, Any]) -> dict[str, Any]:
    """The detector's real shape: one high sample (one alarm per episode). The alert fires once its
    ``for`` has passed and resolves once the peak is older than the rule's window."""
    sel = c.ANOMALY_SCORE.selector(tenant=tenant, **{c.INDICATOR: a.model})
    after = int(seconds(a.for_) // 60) + 2
    gone = int(seconds(anomaly_rules.window(a)) // 60) + 3
    return {
        "name": f"{a.name} fires on a one-sample peak, then resolves",
        "interval": f"{INTERVAL_S}s",
        "input_series": [{"series": sel, "values": f"{low!r} {high!r} {low!r}+0x{gone + 5}"}],
        "alert_rule_test": [
            {"eval_time": f"{after}m", "alertname": a.name, "exp_alerts": [exp]},
            {"eval_time": f"{gone}m", "alertname": a.name, "exp_alerts": []},
        ],
    }


def _matches(labels: dict[str, str], match: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in match.items())


def slo_series(s: SloSpec, tenant: str, error_ratio: float, n: int) -> list[dict[str, str]]:
    """Inputs giving ``tenant`` this error ratio in every window."""
    share = error_ratio if s.kind == "error" else 1 - error_ratio
    if s.part.indicator is not None:
        return _indicator_slo_series(s, tenant, share, n)
    return _metric_slo_series(s.part, s.total, tenant, share, n, s.name)


def _metric_slo_series(
    part: SliPart, total: SliPart, tenant: str, share: float, n: int, name: str
) -> list[dict[str, str]]:
    assert part.metric is not None and total.metric is not None
    per_min = 600.0
    p_labels = {**total.match, **part.match, c.TENANT: tenant}
    q_labels = {**total.match, c.TENANT: tenant}
    same_family = part.metric.sample(part.suffix) == total.metric.sample(total.suffix)
    if same_family:
        for k, v in part.match.items():
            if k not in total.match:
                q_labels[k] = f"not-{v}"
        if _matches(q_labels, part.match):
            raise alert_error(name, "indicator", "the part and total selectors cannot be told apart")
    in_total = same_family and _matches(p_labels, total.match)
    p = share * per_min
    q = per_min - p if in_total else per_min
    return [
        _counter(part.metric.selector(part.suffix, **p_labels), p, n),
        _counter(total.metric.selector(total.suffix, **q_labels), q, n),
    ]


def _indicator_slo_series(s: SloSpec, tenant: str, share: float, n: int) -> list[dict[str, str]]:
    assert s.part.indicator is not None and s.total.indicator is not None  # the spec allows no mix
    part, total = MODELS[s.part.indicator], MODELS[s.total.indicator]
    p = Profile()
    for _ in range(60):
        part.set(p, share * total.value(p))
        if abs(part.value(p) / total.value(p) - share) < 1e-9:
            return profile_series(p, tenant, n)
    raise alert_error(
        s.name, "indicator", f"cannot synthesise test inputs for a {share:g} ratio of these indicators"
    )


def fired(s: SloSpec, ratio: float, tenant_budget: float) -> list[str]:
    """Kinds of burn alert (page, ticket) a steady ``ratio`` fires for a tenant with this budget."""
    return [r.kind for r in s.burn_rules if any(ratio > w.factor * tenant_budget for w in r.windows)]


def _factors(s: SloSpec, kind: str) -> list[float]:
    return [w.factor for r in s.burn_rules if r.kind == kind for w in r.windows]


def burn_ratios(s: SloSpec, b: float) -> dict[str, float]:
    """Steady error ratios that page and ticket, ticket only, and stay quiet, for budget ``b``."""
    page, ticket = _factors(s, "page"), _factors(s, "ticket")
    top = max(page) * b
    low = max(ticket) if max(ticket) < min(page) else min(ticket)
    return {
        "pages and tickets": min(top * 2, (top + 1) / 2),
        "tickets only": (low + min(page)) / 2 * b,
        "stays quiet": 0.5 * min(page + ticket) * b,
    }


def _default_tenant(s: SloSpec) -> str | None:
    """A tenant in the SLO's scope without an objective of its own."""
    pool = s.tenants or (FIRING_TENANT, "tenant-default")
    return next((t for t in pool if t not in s.tenant_objectives), None)


def slo_cases(s: SloSpec) -> list[dict[str, Any]]:
    rules = [r for r in slo_rules.alert_rules(s, routing_labels(s)) if "burn" in r["labels"]]
    name = s.alert_name
    minutes = _eval_minutes(s.page_for, s.ticket_for)
    n = minutes + 5
    tenant, outsider = _scope(s.tenants)
    page_ratio = burn_ratios(s, slo_rules.budget(s))["pages and tickets"]

    def expected(t: str, ratio: float) -> list[dict[str, Any]]:
        kinds = fired(s, ratio, slo_rules.budget(s, t))
        extra = {slo_rules.SLO_LABEL: s.name}
        return [
            _expected(r["labels"], r["annotations"], t, ratio, extra)
            for r in rules
            if r["labels"]["burn"] in kinds
        ]

    cases = []
    for label, ratio in burn_ratios(s, slo_rules.budget(s, tenant)).items():
        series = slo_series(s, tenant, ratio, n) + slo_series(s, OTHER_TENANT, 0.0, n)
        if outsider:
            series += slo_series(s, outsider, page_ratio, n)
        cases.append(_group(f"{name} {label}", series, name, minutes, expected(tenant, ratio)))
    default = _default_tenant(s)
    for own in sorted(t for t in s.tenant_objectives if not s.tenants or t in s.tenants)[:1]:
        ratio = burn_ratios(s, slo_rules.budget(s, own))["pages and tickets"]
        series = slo_series(s, own, ratio, n)
        exp = expected(own, ratio)
        if default:
            series += slo_series(s, default, ratio, n)
            exp += expected(default, ratio)
        title = (
            f"{name} at {ratio:.4g} errors: {own} (objective {s.tenant_objectives[own]:g}) against {default}"
        )
        cases.append(_group(title, series, name, minutes, exp))
    if s.no_data is not None:
        rule = slo_rules.no_data_rule(s, routing_labels(s))
        cases += no_data_cases(
            rule, s.no_data, tenant, lambda t, k: slo_series(s, t, 0.0, k), {slo_rules.SLO_LABEL: s.name}
        )
    return cases


def _silenced(series: list[dict[str, str]], on: int, off: int) -> list[dict[str, str]]:
    """The same inputs for ``on`` minutes, then no sample at all for ``off`` minutes (a dead exporter)."""
    return [{**x, "values": f"{x['values'].rsplit('x', 1)[0]}x{on} _x{off}"} for x in series]


def no_data_cases(
    rule: dict[str, Any],
    nd: NoData,
    tenant: str,
    series: Callable[[str, int], list[dict[str, str]]],
    extra: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Fires for a tenant whose series stop (another keeps sending); quiet while both send."""
    on = 30
    minutes = on + math.ceil((seconds(nd.window) + seconds(nd.for_)) / 60) + 2
    n = minutes + 5
    alert = rule["alert"]
    fire = _silenced(series(tenant, on), on, n - on) + series(OTHER_TENANT, n)
    exp = _expected(rule["labels"], rule["annotations"], tenant, 1.0, extra)
    quiet = series(tenant, n) + series(OTHER_TENANT, n)
    return [
        _group(f"{alert} fires when {tenant}'s series stop", fire, alert, minutes, [exp]),
        _group(f"{alert} stays quiet while data flows", quiet, alert, minutes, []),
    ]


def promtool_tests(spec: Spec, rule_file: str) -> dict[str, Any]:
    """The promtool unit-test document for every alert in the spec."""
    groups: list[dict[str, Any]] = []
    for a in spec.alerts:
        groups += threshold_cases(a)
        if a.no_data is not None:
            groups += no_data_cases(
                threshold.no_data_rule(a),
                a.no_data,
                _scope(a.tenants)[0],
                lambda t, k: profile_series(Profile(), t, k),
            )
    for m in spec.ml_alerts:
        groups += ml_cases(m)
    for s in spec.slos:
        groups += slo_cases(s)
    return {"rule_files": [rule_file], "evaluation_interval": f"{INTERVAL_S}s", "tests": groups}
