"""Every generated dashboard against Grafana's own published models, not against our idea of them.

No Grafana server runs here, so two of Grafana's models stand in for it:

- ``grafana-foundation-sdk`` (Grafana's Python SDK, its Grafana 11.6 types): each dashboard decodes
  with ``Dashboard.from_json``, every panel's ``options`` into that panel type's own class, and encodes
  back with nothing dropped or changed.
- JSON Schemas generated here from npm's ``@grafana/schema`` (Grafana 13) with
  ``ts-json-schema-generator``: the ``Dashboard`` type, zero errors (objects there take no unknown keys,
  so a legacy field is an error), and each panel type's ``Options``, which ``Dashboard`` leaves open. The npm packages go into a cache directory (``$XDG_CACHE_HOME`` or pytest's), never the
  checkout; without node/npm or the registry these tests skip and say why.

"Every dashboard": the examples' (``examples/dashboards.yaml``: realtime, custom, SLO, anomaly and
forecast panels), the default realtime dashboard, a custom one with every component, each
organisation's per-tenant copies and the Helm chart's files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import dashboard as sdk
from grafana_foundation_sdk.models import gauge, heatmap, stat, table, text, timeseries
from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

from tenantpulse import chart_assets
from tenantpulse.grafana import custom, generate, grafana_model, realtime, render, slo, tenants
from tenantpulse.grafana import spec as s

from .test_structure import EVERY_COMPONENT, EXAMPLE

SCHEMA_PACKAGE = "@grafana/schema@13.2.3"
GENERATOR_PACKAGE = "ts-json-schema-generator@2.4.0"  # the last one for node 18 (Debian's); 2.5 wants 22
ORGS = "acme-music=2,globex=3"
OPTIONS_CLASSES = {
    "timeseries": timeseries.Options,
    "stat": stat.Options,
    "gauge": gauge.Options,
    "table": table.Options,
    "heatmap": heatmap.Options,
    "text": text.Options,
}
# What the SDK's Grafana 11.6 types write as defaults but Grafana 13 no longer has (the schema tests
# would reject them): the interval variable's fields on every variable, and the table footer in the
# options. The round trip may add these and nothing else.
SDK_ONLY_DEFAULTS = re.compile(r"/templating/list/\d+/(auto|auto_min|auto_count)|/panels/\d+/options/footer")

register_default_plugins()  # so each panel type's options decode into its own class


def text_dashboard() -> dict[str, Any]:
    """The generators draw no text panel yet; this one checks the conversion of grafanalib's Text."""
    note = g.Text(title="About", content="**tenantpulse**", gridPos=g.GridPos(h=3, w=24, x=0, y=0))
    return render.to_data(g.Dashboard(title="Notes", uid="tp-notes", panels=[note]).auto_panel_ids())


def every_dashboard() -> dict[str, dict[str, Any]]:
    """Name -> JSON of every dashboard the examples, the per-tenant organisations and the chart ship."""
    spec = s.load(EXAMPLE)
    boards = {f"examples/{uid}": board for uid, board in generate.dashboards(spec).items()}
    boards["default-realtime"] = render.to_data(realtime.create_realtime_dashboard())
    boards["every-component"] = render.to_data(
        custom.create_custom_dashboard("All", components=EVERY_COMPONENT)
    )
    boards["text"] = text_dashboard()
    for name, content in tenants.files(
        spec, tenants.parse_tenants(ORGS, True), "http://gateway:8080"
    ).items():
        if name.endswith(".json"):
            boards[f"per-tenant/{name}"] = json.loads(content)
    for name, content in chart_assets.dashboard_files(chart_assets.DEFAULT_DASHBOARDS).items():
        if name.endswith(".json"):
            boards[f"chart/{name}"] = json.loads(content)
    return boards


BOARDS = every_dashboard()


def panels_of(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [q for p in board["panels"] for q in (p, *p.get("panels", []))]


def differences(before: Any, after: Any, path: str = "") -> list[tuple[str, str]]:
    """(what, where) for every value of ``before`` that ``after`` dropped, changed or added to."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = [("dropped", f"{path}/{k}") for k in before if k not in after]
        out += [("added", f"{path}/{k}") for k in after if k not in before]
        for key in before.keys() & after.keys():
            out += differences(before[key], after[key], f"{path}/{key}")
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            d
            for i, (a, b) in enumerate(zip(before, after, strict=True))
            for d in differences(a, b, f"{path}/{i}")
        ]
    same = before == after and type(before) is type(after)
    return [] if same else [("changed", f"{path}: {json.dumps(before)[:80]} -> {json.dumps(after)[:80]}")]


def round_trip(board: dict[str, Any]) -> tuple[sdk.Dashboard, dict[str, Any]]:
    decoded = sdk.Dashboard.from_json(board)
    return decoded, json.loads(json.dumps(decoded, cls=JSONEncoder))


def test_the_sdk_holds_grafana_11_types() -> None:
    """A bare lower bound would let pip pick the SDK's newest build of its Grafana 10.1 types."""
    grafana = metadata.version("grafana-foundation-sdk").partition("!")[2]
    assert tuple(int(n) for n in grafana.split(".")[:2]) >= (11, 6), grafana


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_sdk_round_trip_drops_and_changes_nothing(name: str) -> None:
    board = BOARDS[name]
    decoded, back = round_trip(board)
    for panel, raw in zip(decoded.panels or [], board["panels"], strict=True):
        if raw["type"] != "row":
            assert isinstance(panel.options, OPTIONS_CLASSES[raw["type"]]), raw["title"]
    found = differences(board, back)
    unexpected = [(w, at) for w, at in found if not (w == "added" and SDK_ONLY_DEFAULTS.fullmatch(at))]
    assert unexpected == []


def test_sdk_round_trip_catches_what_grafanalib_writes() -> None:
    """The check can fail: grafanalib's own JSON does not even decode (``null`` colours, options list)."""
    legacy = json.loads(json.dumps(realtime.create_realtime_dashboard().to_json_data(), cls=DashboardEncoder))
    with pytest.raises(TypeError):
        round_trip(legacy)


# --- @grafana/schema -----------------------------------------------------------------------------------


def _cache_dir(config: pytest.Config) -> Path:
    name = f"grafana-schema-{SCHEMA_PACKAGE.rpartition('@')[2]}-{GENERATOR_PACKAGE.rpartition('@')[2]}"
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        path = Path(xdg) / "tenantpulse" / name
        path.mkdir(parents=True, exist_ok=True)
        return path
    return config.cache.mkdir(name)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def npm_dir(pytestconfig: pytest.Config) -> Path:
    """@grafana/schema and the generator, installed once into the cache."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip(
            "node and npm are needed to generate the schema from @grafana/schema (apt install nodejs npm)"
        )
    where = _cache_dir(pytestconfig)
    if not (where / "node_modules" / ".bin" / "ts-json-schema-generator").exists():
        (where / "package.json").write_text('{"private": true}\n')
        done = _run(["npm", "install", "--no-audit", "--no-fund", SCHEMA_PACKAGE, GENERATOR_PACKAGE], where)
        if done.returncode != 0:
            pytest.skip(
                f"npm could not install {SCHEMA_PACKAGE} (no registry?): {done.stderr.strip()[-300:]}"
            )
    return where


def _generate(npm_dir: Path, work: Path, module: str, type_name: str) -> dict[str, Any]:
    """A JSON Schema of ``type_name`` as ``module`` of the npm packages exports it."""
    entry = f"{type_name}-{module.rsplit('/', 1)[-1]}"
    (work / f"{entry}.ts").write_text(f'export type {{ {type_name} }} from "{module}";\n')
    options = {"strict": True, "skipLibCheck": True, "module": "node16", "moduleResolution": "node16"}
    (work / f"{entry}.json").write_text(json.dumps({"compilerOptions": options, "files": [f"{entry}.ts"]}))
    generator = str(npm_dir / "node_modules" / ".bin" / "ts-json-schema-generator")
    # ``--expose none`` inlines every type: the package defines DataSourceRef twice (common and dashboard).
    args = ["--path", f"{entry}.ts", "--type", type_name, "--tsconfig", f"{entry}.json", "--expose", "none"]
    done = _run([generator, *args, "--no-type-check", "--out", f"{entry}.schema.json"], work)
    assert done.returncode == 0, done.stderr
    schema: dict[str, Any] = json.loads((work / f"{entry}.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return schema


@pytest.fixture(scope="module")
def schema_dir(npm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("schema")
    (work / "node_modules").symlink_to(npm_dir / "node_modules")
    return work


@pytest.fixture(scope="module")
def validator(npm_dir: Path, schema_dir: Path) -> jsonschema.Draft7Validator:
    """The JSON Schema of @grafana/schema's exported ``Dashboard`` type, generated now."""
    return jsonschema.Draft7Validator(_generate(npm_dir, schema_dir, "@grafana/schema", "Dashboard"))


def _optional(schema: Any) -> Any:
    """The schema without ``required``: Grafana fills an absent option with its default."""
    if isinstance(schema, dict):
        return {k: _optional(v) for k, v in schema.items() if k != "required"}
    if isinstance(schema, list):
        return [_optional(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def options_validators(npm_dir: Path, schema_dir: Path) -> dict[str, jsonschema.Draft7Validator]:
    """Per panel type, the schema of its ``Options`` in @grafana/schema (the dashboard's ``Panel`` type
    leaves ``options`` open): keys and value types checked, absent options allowed."""
    exports = json.loads((npm_dir / "node_modules/@grafana/schema/package.json").read_text())["exports"]
    out = {}
    for kind in OPTIONS_CLASSES:
        prefix = f"./dist/esm/raw/composable/{kind}/panelcfg/x/"
        (module,) = [k for k in exports if k.startswith(prefix) and k.endswith("_types.gen")]
        schema = _generate(npm_dir, schema_dir, "@grafana/schema" + module[1:], "Options")
        out[kind] = jsonschema.Draft7Validator(_optional(schema))
    return out


def _errors(validator: jsonschema.Draft7Validator, board: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:160]}" for e in validator.iter_errors(board)]


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_dashboard_validates_against_grafana_schema(validator: jsonschema.Draft7Validator, name: str) -> None:
    assert _errors(validator, BOARDS[name]) == []


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panel_options_are_ones_grafana_reads(
    options_validators: dict[str, jsonschema.Draft7Validator], name: str
) -> None:
    errors = [
        f"{panel['title']}: {e.message[:160]}"
        for panel in panels_of(BOARDS[name])
        if panel["type"] != "row"
        for e in options_validators[panel["type"]].iter_errors(panel["options"])
    ]
    assert errors == []


def test_options_schema_catches_misplaced_options(
    options_validators: dict[str, jsonschema.Draft7Validator],
) -> None:
    """The check can fail: an option Grafana does not read, or a value it does not know."""
    gauge_options = {"reduceOptions": {"calcs": ["lastNotNull"]}, "fieldOptions": {}}
    assert list(options_validators["gauge"].iter_errors(gauge_options))
    assert list(options_validators["heatmap"].iter_errors({"rowsFrame": {"layout": "upper"}}))


def test_schema_rejects_what_grafanalib_writes(validator: jsonschema.Draft7Validator) -> None:
    """The check can fail: grafanalib's raw output breaks the schema on its legacy fields."""
    legacy = json.loads(json.dumps(realtime.create_realtime_dashboard().to_json_data(), cls=DashboardEncoder))
    errors = " ".join(_errors(validator, legacy))
    for field in ("'rows'", "'hideControls'", "'sharedCrosshair'", "'style'", "'useTags'", "'editable'"):
        assert field in errors


def test_schema_version_is_the_one_grafana_schema_documents(npm_dir: Path) -> None:
    script = "import('@grafana/schema').then((m) => console.log(m.defaultDashboard.schemaVersion))"
    done = _run(["node", "-e", script], npm_dir)
    assert done.returncode == 0, done.stderr
    assert grafana_model.SCHEMA_VERSION == int(done.stdout) == BOARDS["default-realtime"]["schemaVersion"]


# --- What the conversion carries over --------------------------------------------------------------------


def test_no_null_but_the_base_threshold_step() -> None:
    def nulls(node: Any, path: str) -> list[str]:
        if isinstance(node, dict):
            return [n for k, v in node.items() for n in nulls(v, f"{path}/{k}")]
        if isinstance(node, list):
            return [n for i, v in enumerate(node) for n in nulls(v, f"{path}/{i}")]
        return [path] if node is None else []

    for name, board in BOARDS.items():
        found = nulls(board, "")
        assert all(p.endswith("/thresholds/steps/0/value") for p in found), (name, found[:3])


def test_table_has_a_unit_per_column() -> None:
    board = BOARDS["examples/tp-custom-streaming-business-overview"]
    (tbl,) = [p for p in board["panels"] if p["type"] == "table"]
    columns = {
        o["matcher"]["options"]: {prop["id"]: prop["value"] for prop in o["properties"]}
        for o in tbl["fieldConfig"]["overrides"]
    }
    assert columns == {
        "Value #A": {"displayName": "request_rate", "unit": "ops"},
        "Value #B": {"displayName": "error_rate", "unit": "percentunit"},
        "Value #C": {"displayName": "revenue_rate", "unit": "short"},
    }
    assert "unit" not in tbl["fieldConfig"]["defaults"]
    assert not {"columns", "fontSize", "mappings", "styles"} & tbl.keys()


def test_gauge_options_are_where_grafana_reads_them() -> None:
    board = BOARDS["examples/tp-custom-streaming-business-overview"]
    (gg,) = [p for p in board["panels"] if p["type"] == "gauge"]
    assert gg["options"]["reduceOptions"] == {"calcs": ["lastNotNull"], "fields": "", "values": False}
    assert (gg["options"]["showThresholdLabels"], gg["options"]["showThresholdMarkers"]) == (False, True)
    assert (gg["fieldConfig"]["defaults"]["min"], gg["fieldConfig"]["defaults"]["max"]) == (0, 1)
    assert not {"calcs", "values", "showThresholdLabels"} & gg["fieldConfig"]["defaults"].keys()


def test_heatmap_reads_prometheus_buckets_in_the_current_model() -> None:
    board = BOARDS["examples/tp-custom-reliability"]
    (hm,) = [p for p in board["panels"] if p["type"] == "heatmap"]
    assert hm["options"]["calculate"] is False
    assert hm["options"]["rowsFrame"] == {"layout": "le"}  # Prometheus ``le``: upper bounds
    assert hm["options"]["yAxis"]["unit"] == "s"
    assert hm["options"]["filterValues"] == {"le": 1e-9}  # zero buckets hidden
    assert hm["targets"][0]["format"] == "heatmap"
    assert not {"cards", "color", "dataFormat", "xAxis", "yAxis", "yBucketBound"} & hm.keys()


def _authored() -> dict[str, g.Dashboard]:
    """grafanalib dashboards as authored, before the conversion."""
    return {
        "realtime": realtime.create_realtime_dashboard(),
        "every-component": custom.create_custom_dashboard("All", components=EVERY_COMPONENT),
        "slo": slo.create_slo_dashboard(EXAMPLE.parent / "alerts.yaml"),
    }


@pytest.mark.parametrize("name", sorted(_authored()))
def test_conversion_keeps_what_the_panels_say(name: str) -> None:
    """Titles, grid, queries, units, thresholds, colour modes and overrides as authored in grafanalib."""
    authored = _authored()[name]
    raw = json.loads(json.dumps(authored.to_json_data(), cls=DashboardEncoder))
    converted = render.to_data(authored)
    assert len(raw["panels"]) == len(converted["panels"])
    for old, new in zip(raw["panels"], converted["panels"], strict=True):
        assert (new["id"], new["type"], new["title"], new["gridPos"]) == (
            old["id"],
            old["type"],
            old["title"],
            old["gridPos"],
        )
        if old["type"] == "row":
            continue
        query = ("refId", "expr", "legendFormat", "instant", "format", "exemplar")
        assert [[t[k] for k in query] for t in new["targets"]] == [
            [t[k] for k in query] for t in old["targets"]
        ]
        before, after = old["fieldConfig"]["defaults"], new["fieldConfig"]["defaults"]
        if before.get("unit"):
            assert after["unit"] == before["unit"], new["title"]
        if before["thresholds"]["steps"]:
            assert after["thresholds"]["steps"] == before["thresholds"]["steps"], new["title"]
        for key in ("min", "max"):
            if before.get(key) is not None:
                assert after[key] == before[key], new["title"]
        if "thresholdsStyle" in before.get("custom", {}):
            assert after["custom"]["thresholdsStyle"] == before["custom"]["thresholdsStyle"], new["title"]
        if isinstance(old.get("options"), dict) and "colorMode" in old["options"]:
            assert new["options"]["colorMode"] == old["options"]["colorMode"], new["title"]
        if old["type"] != "table":  # a table's overrides are its columns, checked above
            assert new["fieldConfig"]["overrides"] == old["fieldConfig"].get("overrides", []), new["title"]


def test_text_panel_content_is_in_its_options() -> None:
    (note,) = BOARDS["text"]["panels"]
    assert note["options"]["content"] == "**tenantpulse**" and note["options"]["mode"] == "markdown"
    assert "content" not in note and "targets" not in note
