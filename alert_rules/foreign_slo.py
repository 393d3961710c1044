"""OpenSLO v1 (``kind: SLO``) and Sloth ``prometheus/v1`` specs converted to the bundle's own spec dict.

Peers' users keep their SLO files; the bundle's generators keep one model. A foreign query maps only
when it is a plain counter rate the bundle can rebuild per tenant (``sum(rate(<catalog counter>{exact
matchers}[window]))``), so the generated promtool tests can synthesise its inputs; anything else is
refused naming the foreign field. ``load_spec`` renames the bundle's own validation errors back to the
foreign fields with ``Converted.fields``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tenantpulse.kernel.durations import is_prometheus_duration
from tenantpulse.kernel.errors import SpecError

OPENSLO = "openslo/v1"
SLOTH = "prometheus/v1"
SLOTH_PERIOD = "30d"  # Sloth's default: its spec has no period field

_WINDOW = r"(?:\{\{\s*\.window\s*\}\}|\d+[smhdwy])"
_QUERY_RE = re.compile(
    r"^\s*sum\s*(?:by\s*\(\s*tenant\s*\)\s*)?\(\s*(?:rate|increase)\s*\(\s*"
    r"(?P<metric>[a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(?P<matchers>[^{}]*)\})?\s*\[\s*"
    + _WINDOW
    + r"\s*\]\s*\)\s*\)"
    r"\s*(?:by\s*\(\s*tenant\s*\)\s*)?$"
)
_MATCHER_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_SHAPE = 'sum(rate(<catalog counter>{label="value"}[{{.window}}]))'


@dataclass(frozen=True)
class Converted:
    """The bundle spec dict, and per SLO name the foreign field behind each bundle field."""

    spec: dict[str, Any]
    fields: dict[str, dict[str, str]] = field(default_factory=dict)
    roots: dict[str, str] = field(default_factory=dict)  # SLO name -> its foreign root field

    def rename(self, exc: SpecError) -> SpecError:
        """``exc`` (from ``parse_spec`` on ``spec``) with the foreign field and no bundle SLO name."""
        slo = exc.item or ""
        fields = self.fields.get(slo, {})
        fld = exc.field or ""
        foreign = fields.get(fld) or next(
            (v for k, v in fields.items() if fld.startswith(k + ".")), self.roots.get(slo, fld)
        )
        return SpecError(foreign or None, exc.reason)


def convert(data: Any) -> Converted | None:
    """The converted spec when ``data`` is an OpenSLO v1 or Sloth prometheus/v1 document, else None."""
    if not isinstance(data, dict):
        return None
    if data.get("apiVersion") == OPENSLO:
        return _openslo(data)
    if data.get("version") == SLOTH:
        return _sloth(data)
    if isinstance(data.get("apiVersion"), str) and "openslo" in data["apiVersion"]:
        raise SpecError("apiVersion", f"unsupported OpenSLO version {data['apiVersion']!r}; valid: {OPENSLO}")
    return None


def _openslo(doc: dict[str, Any]) -> Converted:
    if doc.get("kind") != "SLO":
        raise SpecError("kind", f"unsupported kind {doc.get('kind')!r}; valid: SLO (one per file)")
    meta = _map(doc.get("metadata"), "metadata")
    name = _slo_name(meta.get("name"), "metadata.name")
    spec = _map(doc.get("spec"), "spec")
    method = spec.get("budgetingMethod", "Occurrences")
    if method != "Occurrences":
        raise SpecError("spec.budgetingMethod", f"unsupported budgetingMethod {method!r}; valid: Occurrences")
    if "indicatorRef" in spec:
        raise SpecError("spec.indicatorRef", "unsupported: inline the SLI as spec.indicator")
    sli = _map(_map(spec.get("indicator"), "spec.indicator").get("spec"), "spec.indicator.spec")
    if "thresholdMetric" in sli:
        raise SpecError(
            "spec.indicator.spec.thresholdMetric", "unsupported: only ratioMetric (good or bad over total)"
        )
    base = "spec.indicator.spec.ratioMetric"
    ratio = _map(sli.get("ratioMetric"), base)
    if ratio.get("counter", True) is not True:
        raise SpecError(f"{base}.counter", "unsupported: the bundle's SLIs are counters (counter: true)")
    kinds = [k for k in ("good", "bad") if k in ratio]
    if len(kinds) != 1 or "total" not in ratio:
        raise SpecError(base, "needs 'total' and exactly one of 'good' or 'bad'")
    if "rawType" in ratio or "raw" in ratio:
        raise SpecError(f"{base}.raw", "unsupported: raw ratios cannot be rebuilt per tenant")
    queries = {k: _openslo_query(ratio[k], f"{base}.{k}") for k in (kinds[0], "total")}
    windows = _list(spec.get("timeWindow"), "spec.timeWindow")
    if len(windows) != 1:
        raise SpecError("spec.timeWindow", "exactly one time window is supported")
    window = _map(windows[0], "spec.timeWindow[0]")
    if "calendar" in window or window.get("isRolling", True) is not True:
        raise SpecError(
            "spec.timeWindow[0].isRolling", "unsupported: calendar windows (only isRolling: true)"
        )
    period = _duration(window.get("duration"), "spec.timeWindow[0].duration")
    objectives = _list(spec.get("objectives"), "spec.objectives")
    if len(objectives) != 1:
        raise SpecError("spec.objectives", f"exactly one objective is supported, got {len(objectives)}")
    objective = _map(objectives[0], "spec.objectives[0]")
    for unsupported in ("op", "value", "timeSliceTarget", "timeSliceWindow", "indicator", "indicatorRef"):
        if unsupported in objective:
            raise SpecError(f"spec.objectives[0].{unsupported}", "unsupported in a ratio SLO of occurrences")
    target = _target(objective.get("target"), "spec.objectives[0].target", 1)
    runbook = _runbook(
        _map(meta.get("annotations", {}), "metadata.annotations").get("runbook_url"),
        "metadata.annotations.runbook_url",
    )
    slo, fields = _slo(name, target, period, queries, "error" if kinds[0] == "bad" else "good", runbook)
    fields |= {
        "objective": "spec.objectives[0].target",
        "period": "spec.timeWindow[0].duration",
        "runbook_url": "metadata.annotations.runbook_url",
    }
    return Converted({"slos": [slo]}, {name: fields}, {name: "spec"})


def _openslo_query(raw: Any, where: str) -> tuple[str, Any]:
    source = _map(_map(raw, where).get("metricSource"), f"{where}.metricSource")
    kind = source.get("type")
    if not isinstance(kind, str) or kind.lower() != "prometheus":
        raise SpecError(
            f"{where}.metricSource.type", f"unsupported metric source {kind!r}; valid: Prometheus"
        )
    query = _map(source.get("spec"), f"{where}.metricSource.spec").get("query")
    return f"{where}.metricSource.spec.query", query  # checked by _part


def _sloth(doc: dict[str, Any]) -> Converted:
    service = doc.get("service")
    if not isinstance(service, str) or not service.strip():
        raise SpecError("service", f"must be a non-empty string, got {service!r}")
    slos, fields, roots = [], {}, {}
    for i, raw in enumerate(_list(doc.get("slos"), "slos")):
        at = f"slos[{i}]"
        m = _map(raw, at)
        name = _slo_name(
            f"{service}-{m.get('name')}" if isinstance(m.get("name"), str) else None, f"{at}.name"
        )
        sli = _map(m.get("sli"), f"{at}.sli")
        for unsupported in ("raw", "plugin"):
            if unsupported in sli:
                raise SpecError(
                    f"{at}.sli.{unsupported}", "unsupported: only sli.events (error/total queries)"
                )
        events = _map(sli.get("events"), f"{at}.sli.events")
        queries = {k: (f"{at}.sli.events.{k}_query", events.get(f"{k}_query")) for k in ("error", "total")}
        alerting = _map(m.get("alerting", {}), f"{at}.alerting")
        for kind in ("page_alert", "ticket_alert"):
            if _map(alerting.get(kind, {}), f"{at}.alerting.{kind}").get("disable", False) is not False:
                raise SpecError(
                    f"{at}.alerting.{kind}.disable", "unsupported: the bundle always pages and tickets"
                )
        runbook = _runbook(
            _map(alerting.get("annotations", {}), f"{at}.alerting.annotations").get("runbook"),
            f"{at}.alerting.annotations.runbook",
        )
        target = _target(m.get("objective"), f"{at}.objective", 100)
        slo, f = _slo(name, target, SLOTH_PERIOD, queries, "error", runbook)
        slos.append(slo)
        fields[name] = f | {
            "objective": f"{at}.objective",
            "period": at,
            "runbook_url": f"{at}.alerting.annotations.runbook",
        }
        roots[name] = at
    return Converted({"slos": slos}, fields, roots)


def _slo(
    name: str, objective: float, period: str, queries: dict[str, tuple[str, Any]], kind: str, runbook: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    indicator, fields = {}, {}
    for key, (where, query) in queries.items():
        part = "total" if key == "total" else kind
        indicator[part] = _part(query, where)
        fields[f"indicator.{part}"] = where
    return {
        "name": name,
        "objective": objective,
        "period": period,
        "indicator": indicator,
        "runbook_url": runbook,
    }, fields


def _part(query: Any, where: str) -> dict[str, Any]:
    """``{metric, match}`` from ``sum(rate(metric{a="b"}[{{.window}}]))``; any other shape is refused."""
    if not isinstance(query, str) or not query.strip():
        raise SpecError(where, f"must be a non-empty PromQL string, got {query!r}")
    m = _QUERY_RE.match(query)
    if m is None:
        raise SpecError(
            where, f"unsupported query {query.strip()!r}: only {_SHAPE} maps onto the bundle's SLIs"
        )
    match, text = {}, m.group("matchers") or ""
    pos = 0
    while pos < len(text.rstrip()):
        mm = _MATCHER_RE.match(text, pos)
        if mm is None:
            raise SpecError(where, f"cannot read the matchers {{{text}}}")
        label, op, value = mm.groups()
        if op != "=":
            raise SpecError(
                where, f'matcher {label}{op}"{value}": only exact matches (=) map onto the bundle\'s SLIs'
            )
        if label == "tenant":
            raise SpecError(
                where, "the tenant label is added by the bundle (per-tenant ratios); drop tenant="
            )
        match[label] = value.encode().decode("unicode_escape")
        pos = mm.end()
    return {"metric": m.group("metric"), "match": match}


def _runbook(raw: Any, where: str) -> str:
    """The bundle's pages always link a runbook; the peers' specs keep it in an annotation."""
    if not isinstance(raw, str) or not raw.strip():
        raise SpecError(where, f"missing runbook URL (got {raw!r}): every page the bundle sends links one")
    return raw


def _slo_name(raw: Any, where: str) -> str:
    """``my-service-availability`` -> ``my_service_availability`` (the bundle's names are snake case)."""
    if not isinstance(raw, str) or not re.match(r"^[a-z][a-z0-9_-]*$", raw):
        raise SpecError(
            where, f"name {raw!r} must be lowercase letters, digits and '-', starting with a letter"
        )
    return raw.replace("-", "_")


def _target(raw: Any, where: str, scale: int) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise SpecError(where, f"must be a number, got {raw!r}")
    if not 0 < raw < scale:
        example = "0.999" if scale == 1 else "99.9"
        raise SpecError(where, f"objective {raw} must be in (0, {scale}), e.g. {example}")
    return round(raw / scale, 12)


def _duration(raw: Any, where: str) -> str:
    if not is_prometheus_duration(raw):
        raise SpecError(
            where, f"bad duration {raw!r}; use a rolling duration such as 28d, 4w, 30d (no M, Q, Y)"
        )
    return str(raw)


def _map(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise SpecError(where, f"must be a mapping, got {type(raw).__name__}")
    return raw


def _list(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise SpecError(where, f"must be a list, got {type(raw).__name__}")
    return raw
