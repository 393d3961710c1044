"""Structure of every generated dashboard: ids, grid, datasources, variables; and the output files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tenantpulse.conventions import catalog as c
from tenantpulse.conventions import indicators
from tenantpulse.grafana import generate, provisioning, realtime
from tenantpulse.grafana import spec as s
from tenantpulse.grafana.custom import create_custom_dashboard
from tenantpulse.grafana.layout import GRID_WIDTH
from tenantpulse.grafana.render import to_data, uid_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "dashboards.yaml"
GRAFANA_BUILTINS = {
    "__rate_interval",
    "__interval",
    "__interval_ms",
    "__range",
    "__range_s",
    "__range_ms",
    "__from",
    "__to",
    "__dashboard",
}
VAR_RE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]")

EVERY_COMPONENT = [
    {"type": "chart", "indicators": ["request_rate", "errors_per_second"]},
    {"type": "chart", "metric": c.INGEST_REQUEST_DURATION.name, "quantile": 0.99},
    {"type": "kpi", "indicator": "plays_per_minute", "width": 4, "height": 3},
    {"type": "kpi", "metric": c.CUSTOM_KPI.name, "labels": {c.KPI: "nps"}},
    {"type": "gauge", "indicator": "conversion_rate"},
    {"type": "table", "indicators": ["request_rate", "error_rate"]},
    {"type": "heatmap", "metric": c.EVENT_DURATION.name},
    {"type": "anomaly", "indicator": "p95_latency"},
    {"type": "forecast", "indicator": "revenue_rate"},
    {"type": "score", "indicators": ["request_rate"]},
]


def all_dashboards() -> dict[str, dict[str, Any]]:
    boards = generate.dashboards(s.load(EXAMPLE))
    boards["every-widget"] = to_data(realtime.create_realtime_dashboard("t1"))
    boards["every-component"] = to_data(
        create_custom_dashboard("Every component", components=EVERY_COMPONENT)
    )
    return boards


def panels_of(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"]] + [q for p in board["panels"] for q in p.get("panels", [])]


def overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def variables_used(node: Any) -> set[str]:
    """Every $var, ${var} and [[var]] in any string of the JSON tree."""
    if isinstance(node, dict):
        return set().union(*(variables_used(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(variables_used(v) for v in node)) if node else set()
    if isinstance(node, str):
        return {next(g for g in m.groups() if g) for m in VAR_RE.finditer(node)}
    return set()


BOARDS = all_dashboards()


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_panel_ids_are_unique(uid: str) -> None:
    ids = [p["id"] for p in panels_of(BOARDS[uid])]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_grid_positions_fit_and_never_overlap(uid: str) -> None:
    boxes = [(p["title"], p["gridPos"]) for p in panels_of(BOARDS[uid])]
    for title, box in boxes:
        assert box["x"] >= 0 and box["x"] + box["w"] <= GRID_WIDTH and box["h"] >= 1, title
    for i, (t1, a) in enumerate(boxes):
        for t2, b in boxes[i + 1 :]:
            assert not overlaps(a, b), f"{t1!r} {a} overlaps {t2!r} {b}"


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_every_datasource_is_a_variable_or_provisioned(uid: str) -> None:
    board = BOARDS[uid]
    ds_vars = {f"${{{v['name']}}}" for v in board["templating"]["list"] if v["type"] == "datasource"}
    provisioned = {d["uid"] for d in provisioning.datasources(s.GrafanaTarget())["datasources"]}
    refs = [(p["title"], p["datasource"]) for p in panels_of(board) if p["type"] != "row"]
    refs += [(p["title"], t["datasource"]) for p in panels_of(board) for t in p.get("targets", [])]
    refs += [(v["name"], v["datasource"]) for v in board["templating"]["list"] if v["type"] == "query"]
    assert refs
    for where, ref in refs:
        assert isinstance(ref, dict) and ref.get("type") == "prometheus", where
        assert ref["uid"] in ds_vars | provisioned, f"{where}: datasource {ref} is not defined"


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_every_variable_used_is_defined(uid: str) -> None:
    board = BOARDS[uid]
    defined = {v["name"] for v in board["templating"]["list"]}
    used = variables_used(board["panels"]) | variables_used(board["templating"])
    assert used - defined - GRAFANA_BUILTINS == set()
    assert "tenant" in used, "panels must follow the tenant variable"


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_every_query_panel_has_targets_and_a_tenant_filter(uid: str) -> None:
    for panel in panels_of(BOARDS[uid]):
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert isinstance(steps, list), f"{panel['title']}: Grafana needs a list of threshold steps"
        for t in panel["targets"]:
            assert t["expr"] and t["refId"], panel["title"]
            tenant_metrics = [m.name for m in c.ALL if c.TENANT in m.labels]
            if any(name in t["expr"] for name in tenant_metrics):
                assert '{tenant="$tenant"' in t["expr"], f"{panel['title']}: {t['expr']} ignores $tenant"


def test_latency_panels_ask_for_exemplars() -> None:
    board = BOARDS["every-widget"]
    latency = [
        p for p in panels_of(board) if "p95" in json.dumps(p.get("targets", [])) and p["type"] == "timeseries"
    ]
    quantile_targets = [
        t for p in latency for t in p["targets"] if t["expr"].startswith("histogram_quantile")
    ]
    assert quantile_targets and all(t["exemplar"] for t in quantile_targets)
    plain = [t for p in panels_of(board) for t in p.get("targets", []) if "revenue" in t["expr"]]
    assert plain and not any(t["exemplar"] for t in plain)


def test_queries_come_from_the_indicators() -> None:
    board = BOARDS["every-widget"]
    exprs = [t["expr"] for p in panels_of(board) for t in p.get("targets", [])]
    for name in ("request_rate", "error_rate", "p99_latency", "revenue_rate", "unique_users_1d"):
        built = indicators.get(name).build("$tenant", "$__rate_interval")
        assert any(built in e for e in exprs), name


def test_anomaly_band_fills_between_lower_and_upper() -> None:
    board = BOARDS["every-component"]
    band = next(p for p in board["panels"] if p["title"].startswith("p95_latency: observed"))
    legends = [t["legendFormat"] for t in band["targets"]]
    assert legends == ["observed", "expected", "lower", "upper"]
    fill = band["fieldConfig"]["overrides"][0]
    assert fill["matcher"]["options"] == "upper"
    assert {"id": "custom.fillBelowTo", "value": "lower"} in fill["properties"]
    exprs = " ".join(t["expr"] for t in band["targets"])
    for metric in (c.ANOMALY_EXPECTED, c.ANOMALY_LOWER, c.ANOMALY_UPPER):
        assert metric.name in exprs


def test_forecast_panel_uses_the_horizon_variable() -> None:
    board = BOARDS["every-component"]
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["datasource", "tenant", "horizon"]
    forecast = next(p for p in board["panels"] if "forecast" in p["title"])
    assert any('horizon="$horizon"' in t["expr"] for t in forecast["targets"])


def test_tenant_variable_lists_tenants_of_the_event_counter() -> None:
    tenant = next(v for v in BOARDS["tp-realtime-acme-music"]["templating"]["list"] if v["name"] == "tenant")
    assert tenant["query"] == f"label_values({c.EVENTS.name}, tenant)"
    assert tenant["current"]["value"] == "acme-music"


def test_generate_writes_every_output_deterministically(tmp_path: Path) -> None:
    spec = s.load(EXAMPLE)
    first = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in generate.write(spec, tmp_path / "a")}
    second = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in generate.write(spec, tmp_path / "b")}
    assert first == second
    names = {str(p) for p in first}
    assert "provisioning/datasources/tenantpulse.yaml" in names
    assert "provisioning/dashboards/tenantpulse.yaml" in names
    uids = sorted(generate.dashboards(spec))
    assert {f"dashboards/{u}.json" for u in uids} | {f"configmaps/{u}.yaml" for u in uids} <= names

    for uid in uids:
        cm = yaml.safe_load(first[Path(f"configmaps/{uid}.yaml")])
        assert cm["kind"] == "ConfigMap" and cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(cm["data"][f"{uid}.json"]) == json.loads(first[Path(f"dashboards/{uid}.json")])

    ds = yaml.safe_load(first[Path("provisioning/datasources/tenantpulse.yaml")])
    prom, jaeger = ds["datasources"]
    assert prom["url"] == "http://prometheus-operated.monitoring:9090"
    assert prom["jsonData"]["exemplarTraceIdDestinations"] == [
        {"name": "trace_id", "datasourceUid": jaeger["uid"]}
    ]
    assert jaeger["type"] == "jaeger"


def test_regenerating_removes_dashboards_dropped_from_the_spec(tmp_path: Path) -> None:
    spec = s.load(EXAMPLE)
    generate.write(spec, tmp_path)
    smaller = s.parse(
        {"dashboards": [{"name": "Only", "components": [{"type": "kpi", "indicator": "active_users"}]}]}
    )
    generate.write(smaller, tmp_path)
    assert sorted(p.name for p in (tmp_path / "dashboards").iterdir()) == ["tp-custom-only.json"]
    assert sorted(p.name for p in (tmp_path / "configmaps").iterdir()) == ["tp-custom-only.yaml"]


def test_configmaps_are_valid_kubernetes_objects(tmp_path: Path) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for path in generate.write(s.load(EXAMPLE), tmp_path):
        if path.parent.name == "configmaps":
            kubernetes_validate.validate(yaml.safe_load(path.read_text()), "1.29", strict=True)


def test_slo_dashboard_has_a_section_per_slo_reading_its_recording_rules() -> None:
    from tenantpulse.alert_rules import slo as slo_rules
    from tenantpulse.alert_rules.spec import load_spec

    slos = load_spec(EXAMPLE.parent / "alerts.yaml").slos
    board = BOARDS[uid_for("slo", "tenantpulse SLOs")]
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert [r.split(":")[0] for r in rows] == [f"SLO {slo.name}" for slo in slos]
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p.get("targets", []))
    for slo in slos:
        names = slo_rules.recording_rule_names(slo)
        assert f'{names["budget_remaining"]}{{slo="{slo.name}",tenant="$tenant"}}' in exprs
        assert f'{names["1h"]}{{slo="{slo.name}",tenant="$tenant"}}' in exprs


def test_slo_dashboard_refuses_an_alert_spec_without_slos(tmp_path: Path) -> None:
    from tenantpulse.grafana.slo import create_slo_dashboard
    from tenantpulse.kernel.errors import UsageError

    spec = tmp_path / "alerts.yaml"
    spec.write_text(
        "alerts:\n  - {name: high_errors, condition: error_rate > 0.05, runbook_url: https://runbooks/x}\n"
    )
    with pytest.raises(UsageError, match="defines no slos"):
        create_slo_dashboard(spec)


def test_no_metric_name_is_typed_in_grafana_sources() -> None:
    """Names come from the catalog objects; a literal would survive a rename and draw "No data"."""
    sources = {p.name: p.read_text() for p in (ROOT / "grafana").glob("*.py")}
    typed = [(f, m.name) for f, text in sources.items() for m in c.ALL if m.family in text]
    assert typed == []


def test_slo_dashboard_compares_with_the_selected_tenants_own_objective() -> None:
    """With per-tenant objectives the budget lines and burn rates divide by the tenant's recorded budget."""
    from tenantpulse.alert_rules import slo as slo_rules
    from tenantpulse.alert_rules.spec import parse_spec
    from tenantpulse.grafana.slo import slo_panels

    events = {"metric": "tenantpulse_events_total"}
    raw = {"name": "avail", "objective": 0.999, "tenant_objectives": {"acme": 0.9999}}
    raw["indicator"] = {"error": {**events, "match": {"event_type": "error"}}, "total": events}
    spec = {"defaults": {"runbook_base": "https://rb"}, "slos": [raw]}
    for overridden in (
        parse_spec(spec).slos[0],
        parse_spec({**spec, "slos": [{**raw, "tenant_objectives": {}}]}).slos[0],
    ):
        exprs = [t.expr for panel, _ in slo_panels(overridden) for t in getattr(panel, "targets", [])]
        burn = [e for e in exprs if " / (1 - " in e]
        budget = f'{slo_rules.TENANT_BUDGET}{{slo="avail",tenant="$tenant"}}'
        if overridden.tenant_objectives:
            assert burn and all(f"(1 - max({budget}))" in e for e in burn), burn
            assert "1 - (1 - max(" in " ".join(exprs)
        else:
            assert burn and all(slo_rules.OBJECTIVE in e and budget not in e for e in burn), burn
