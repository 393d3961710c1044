"""``generate dashboards --per-tenant``: one Grafana organisation per tenant, proved by structure.

Per organisation: a datasource at the gateway whose key is a ``$__file{}`` reference to that
organisation's own key file (never a key), a provider with the same orgId reading a directory of its own,
and dashboards whose ``$tenant`` is a hidden constant and whose every query reads ``$tenant`` (so, through
the gateway, only that tenant). The dashboards pass the same structural checks as every generated one
(``test_structure``: ids, grid, datasources, variables, tenant filters).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tenantpulse.cli import main
from tenantpulse.grafana import generate, provisioning, tenants
from tenantpulse.grafana import spec as s
from tests.grafana import test_structure
from tests.grafana.test_structure import EXAMPLE, panels_of

GATEWAY = "http://tenantpulse-gateway:9110"
TENANTS = {"acme-music": 2, "globex": 3, "initech.eu": 7}  # acme-music has a realtime dashboard of its own
ORG_IDS = {None: 1} | TENANTS
KEYS_DIR = "/etc/grafana/tenant-keys"


def generate_per_tenant(out: Path, *extra: str) -> int:
    tenant_list = ",".join(f"{t}={i}" for t, i in TENANTS.items())
    return main(
        ["generate", "dashboards", "--spec", str(EXAMPLE), "--out", str(out), "--per-tenant"]
        + ["--tenants", tenant_list, "--gateway-url", GATEWAY, *extra]
    )


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("per-tenant")
    assert generate_per_tenant(path) == 0
    return path


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def orgs(out: Path) -> dict[str | None, dict[str, Any]]:
    """tenant (None: the operators) -> its datasources, its provider and its dashboards, as generated."""
    found: dict[str | None, dict[str, Any]] = {}
    for tenant in ORG_IDS:
        name = "tenantpulse" if tenant is None else f"tenantpulse-{tenant}"
        slug = tenant or tenants.OPERATORS
        found[tenant] = {
            "datasources": read_yaml(out / "provisioning" / "datasources" / f"{name}.yaml")["datasources"],
            "providers": read_yaml(out / "provisioning" / "dashboards" / f"{name}.yaml")["providers"],
            "dashboards": {
                p.stem: json.loads(p.read_text()) for p in (out / "dashboards" / slug).glob("*.json")
            },
        }
    return found


def test_every_file_belongs_to_one_organisation(out: Path) -> None:
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    slugs = [t or tenants.OPERATORS for t in ORG_IDS]
    assert {f.split("/")[1] for f in files if f.startswith("dashboards/")} == set(slugs)
    assert len([f for f in files if f.startswith("provisioning/")]) == 2 * len(ORG_IDS)
    assert not any(f.startswith("configmaps/") for f in files), "the Grafana sidecar knows one organisation"


def test_datasources_point_at_the_gateway_with_their_own_key_by_reference(out: Path) -> None:
    for tenant, org in orgs(out).items():
        slug = tenant or tenants.OPERATORS
        gateway = [d for d in org["datasources"] if d["type"] == "prometheus"]
        assert len(gateway) == 1, "one Prometheus datasource per organisation"
        (source,) = gateway
        assert source["url"] == GATEWAY and source["uid"] == provisioning.GATEWAY_UID
        assert source["basicAuth"] is True and source["editable"] is False
        assert source["secureJsonData"] == {"basicAuthPassword": f"$__file{{{KEYS_DIR}/{slug}}}"}
        assert {d["orgId"] for d in org["datasources"]} == {ORG_IDS[tenant]}
        if tenant is None:  # beside organisation 1's own default, with Jaeger for exemplars
            assert source["isDefault"] is False
            assert [d["type"] for d in org["datasources"]] == ["prometheus", "jaeger"]
            assert (
                source["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"]
                == provisioning.JAEGER_UID
            )
        else:  # traces are not separated by tenant: no Jaeger, no exemplar links to it
            assert source["isDefault"] is True and len(org["datasources"]) == 1
            assert "exemplarTraceIdDestinations" not in source["jsonData"]


def test_no_file_holds_a_secret_or_another_tenants_key_reference(out: Path) -> None:
    for tenant, org in orgs(out).items():
        secure = [v for d in org["datasources"] for v in d.get("secureJsonData", {}).values()]
        assert secure and all(v.startswith("$__file{") and v.endswith("}") for v in secure)
        text = json.dumps(org["datasources"])
        others = [t for t in ORG_IDS if t != tenant]
        assert not any(f"{KEYS_DIR}/{t or tenants.OPERATORS}}}" in text for t in others)


def test_providers_and_datasources_agree_on_the_organisation(out: Path) -> None:
    paths = []
    for tenant, org in orgs(out).items():
        (provider,) = org["providers"]
        assert provider["orgId"] == ORG_IDS[tenant] == org["datasources"][0]["orgId"]
        assert provider["type"] == "file" and provider["folder"] == "tenantpulse"
        assert provider["options"]["path"].endswith(f"/{tenant or tenants.OPERATORS}")
        paths.append(provider["options"]["path"])
    names = [o["providers"][0]["name"] for o in orgs(out).values()]
    assert len(set(names)) == len(names), "Grafana tracks provisioned dashboards by provider name"
    # Grafana reads a provider's directory recursively: none may hold another's.
    assert not any(a != b and b.startswith(a + "/") for a in paths for b in paths)


def test_tenant_dashboards_pin_a_hidden_tenant_and_query_only_it(out: Path) -> None:
    for tenant, org in orgs(out).items():
        if tenant is None:
            continue
        assert org["dashboards"], tenant
        for uid, board in org["dashboards"].items():
            variables = {v["name"]: v for v in board["templating"]["list"]}
            pinned = variables["tenant"]
            assert (pinned["type"], pinned["hide"], pinned["query"]) == ("constant", 2, tenant)
            assert pinned["current"]["value"] == tenant
            assert variables["datasource"]["current"]["value"] == provisioning.GATEWAY_UID
            exprs = [t["expr"] for p in panels_of(board) for t in p.get("targets", [])]
            assert exprs and all(tenants.TENANT_MATCH in e for e in exprs), uid
            text = json.dumps(board)
            assert not [t for t in TENANTS if t != tenant and t in text], (
                f"{tenant}/{uid} names another tenant"
            )


def test_operators_see_every_dashboard_for_every_tenant(out: Path) -> None:
    operators = orgs(out)[None]["dashboards"]
    single = generate.dashboards(s.load(EXAMPLE))
    assert sorted(operators) == sorted(single)
    for uid, board in operators.items():
        assert [v["type"] for v in board["templating"]["list"]] == [
            v["type"] for v in single[uid]["templating"]["list"]
        ]
        assert board["panels"] == single[uid]["panels"], "the operators keep every panel"


def test_a_realtime_dashboard_opened_on_a_tenant_goes_to_that_tenant_only(out: Path) -> None:
    found = orgs(out)
    assert "tp-realtime-acme-music" in found["acme-music"]["dashboards"]
    assert "tp-realtime-acme-music" not in found["globex"]["dashboards"]
    assert "tp-realtime-all" in found["globex"]["dashboards"]


def test_panels_without_tenant_series_are_left_out_for_tenants(out: Path) -> None:
    found = orgs(out)
    titles = {p["title"] for p in panels_of(found["globex"]["dashboards"]["tp-realtime-all"])}
    operator_titles = {p["title"] for p in panels_of(found[None]["dashboards"]["tp-realtime-all"])}
    assert {"Exporter host CPU", "Exporter host memory"} <= operator_titles - titles


def tenant_boards() -> dict[str, dict[str, Any]]:
    spec = s.load(EXAMPLE)
    return {
        f"{tenant}/{uid}": board
        for tenant, org_id in TENANTS.items()
        for uid, board in tenants.dashboards(spec, tenants.Org(tenant, org_id)).items()
    } | {f"operators/{u}": b for u, b in tenants.dashboards(spec, tenants.OPERATORS_ORG).items()}


BOARDS = tenant_boards()
CHECKS = [
    test_structure.test_panel_ids_are_unique,
    test_structure.test_grid_positions_fit_and_never_overlap,
    test_structure.test_every_datasource_is_a_variable_or_provisioned,
    test_structure.test_every_variable_used_is_defined,
    test_structure.test_every_query_panel_has_targets_and_a_tenant_filter,
]


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__.removeprefix("test_") for c in CHECKS])
@pytest.mark.parametrize("key", sorted(BOARDS))
def test_dashboards_pass_the_structural_checks(key: str, check: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks every generated dashboard passes, run on each organisation's version of it."""
    monkeypatch.setitem(test_structure.BOARDS, key, BOARDS[key])
    check(key)


def test_generation_is_deterministic_and_a_rerun_removes_what_is_gone(tmp_path: Path) -> None:
    assert generate_per_tenant(tmp_path / "a") == 0
    assert generate_per_tenant(tmp_path / "b") == 0
    a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file()}
    b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*") if p.is_file()}
    assert a == b
    smaller = ["generate", "dashboards", "--spec", str(EXAMPLE), "--out", str(tmp_path / "a"), "--per-tenant"]
    assert main([*smaller, "--tenants", "globex=3", "--gateway-url", GATEWAY]) == 0
    assert sorted(p.name for p in (tmp_path / "a" / "dashboards").iterdir()) == [tenants.OPERATORS, "globex"]
    assert not (tmp_path / "a" / "provisioning" / "datasources" / "tenantpulse-acme-music.yaml").exists()
    # Back to one organisation: the per-tenant files go.
    assert main(["generate", "dashboards", "--spec", str(EXAMPLE), "--out", str(tmp_path / "a")]) == 0
    assert not list((tmp_path / "a" / "dashboards").glob("*/"))


def test_keys_dir_is_the_reference_given(tmp_path: Path) -> None:
    assert generate_per_tenant(tmp_path, "--keys-dir", "/run/secrets/gw/") == 0
    ds = read_yaml(tmp_path / "provisioning" / "datasources" / "tenantpulse-globex.yaml")["datasources"][0]
    assert ds["secureJsonData"]["basicAuthPassword"] == "$__file{/run/secrets/gw/globex}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--per-tenant", "--tenants", "acme,globex", "--gateway-url", GATEWAY], "give each tenant its Grafana organisation id (acme=ORG_ID)"),
        (["--per-tenant", "--tenants", "acme=1", "--gateway-url", GATEWAY], "organisation 1 is the operators'"),
        (["--per-tenant", "--tenants", "acme=2,globex=2", "--gateway-url", GATEWAY], "organisation id 2 is given twice"),
        (["--per-tenant", "--tenants", "acme=2,acme=3", "--gateway-url", GATEWAY], "tenant acme is given twice"),
        (["--per-tenant", "--tenants", "bad tenant=2", "--gateway-url", GATEWAY], "'bad tenant' is not a tenant id"),
        (["--per-tenant", "--tenants", "acme=2"], "--per-tenant needs --gateway-url"),
        (["--per-tenant", "--gateway-url", GATEWAY], "--per-tenant needs --tenants"),
        (["--per-tenant", "--tenants", "acme=2", "--gateway-url", "gateway:9110"], "--gateway-url must be an http(s) URL"),
        (["--tenants", "acme=2"], "--tenants only goes with --per-tenant"),
        (["--per-tenant", "--tenants", "acme=2", "--gateway-url", GATEWAY, "--keys-dir", "keys"], "--keys-dir must be an absolute path"),
        (["--per-tenant", "--tenants", "acme=2", "--gateway-url", GATEWAY, "--keys-dir", "/k/$X"], "without '$'"),
    ],
)  # fmt: skip
def test_bad_per_tenant_flags_are_one_line_and_exit_2(
    tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "dashboards", "--spec", str(EXAMPLE), "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("tenantpulse generate: error: ")
    assert not (tmp_path / "o").exists()
