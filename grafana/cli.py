"""``tenantpulse generate dashboards`` and ``tenantpulse dashboards push``, for one Grafana organisation
or, with ``--per-tenant``, one per tenant (``grafana.tenants``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tenantpulse.grafana.defaults import DEFAULT_KEYS_DIR
from tenantpulse.kernel.errors import UsageError

if TYPE_CHECKING:  # grafanalib and requests load when a command runs, not for --help
    from tenantpulse.grafana import tenants

FOLDER_UID = "tenantpulse"


def _per_tenant_arguments(p: argparse.ArgumentParser, ids: str, keys_dir: str) -> None:
    p.add_argument(
        "--per-tenant",
        action="store_true",
        help="one Grafana organisation per tenant reading through the gateway with the tenant's key, "
        "and organisation 1 for the operators (docs/dashboards.md); needs --tenants and --gateway-url",
    )
    p.add_argument("--tenants", metavar="LIST", help=f"with --per-tenant: comma-separated tenants, {ids}")
    p.add_argument(
        "--gateway-url",
        metavar="URL",
        help="with --per-tenant: the tenantpulse gateway as Grafana reaches it, e.g. http://tenantpulse-gateway:9110",
    )
    p.add_argument("--keys-dir", metavar="DIR", help=keys_dir)


def register(root: argparse._SubParsersAction, gen: argparse._SubParsersAction) -> None:
    g = gen.add_parser(
        "dashboards",
        help="Grafana dashboards, provisioning files and ConfigMaps from a dashboards spec",
        description="Writes DIR/dashboards/*.json, DIR/provisioning/{datasources,dashboards}/tenantpulse.yaml "
        "and DIR/configmaps/*.yaml (deterministic: same spec, same bytes). With --per-tenant: per "
        "organisation DIR/dashboards/<tenant>/*.json and DIR/provisioning/*/tenantpulse-<tenant>.yaml "
        "(the operators' organisation 1: _operators/ and tenantpulse.yaml), no ConfigMaps.",
    )
    g.add_argument(
        "--spec", type=Path, required=True, help="dashboards spec (YAML), e.g. examples/dashboards.yaml"
    )
    g.add_argument("--out", type=Path, required=True, help="output directory")
    _per_tenant_arguments(
        g,
        "each with its Grafana organisation id: acme=2,globex=3",
        "with --per-tenant: the directory in Grafana's container holding each tenant's read key in a file "
        "named after the tenant and an all-tenant read key in _operators; the datasources refer to them as "
        f"$__file{{DIR/<tenant>}} (default: {DEFAULT_KEYS_DIR})",
    )
    g.set_defaults(func=_generate)

    d = root.add_parser("dashboards", help="work with dashboards in a running Grafana")
    sub = d.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    p = sub.add_parser(
        "push",
        help="create or update dashboards in Grafana (POST /api/dashboards/db, overwrite)",
        description="Push the dashboards of a spec (--spec) or of a generated directory (--dir). With "
        "--per-tenant also the organisations, datasources and folders (docs/dashboards.md).",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--spec", type=Path, help="dashboards spec (YAML) to generate and push")
    src.add_argument("--dir", type=Path, help="a `generate dashboards` output directory (or its dashboards/)")
    p.add_argument("--grafana-url", required=True, help="e.g. http://grafana:3000")
    auth = p.add_mutually_exclusive_group(required=True)
    auth.add_argument("--token-file", type=Path, help="file holding a Grafana service account token")
    auth.add_argument(
        "--basic-auth-file",
        type=Path,
        help="file holding user:password of a Grafana server admin (needed by --per-tenant: Grafana's "
        "organisation API takes no token)",
    )
    p.add_argument(
        "--folder",
        help="uid of the Grafana folder to put the dashboards in (default: General; with --per-tenant: "
        f"created in each organisation, {FOLDER_UID!r})",
    )
    _per_tenant_arguments(
        p,
        "organisations found or created by name (acme,globex); acme=2 also checks the id",
        "with --per-tenant: local directory holding each tenant's read key in a file named after the "
        "tenant and an all-tenant read key in _operators (required with --per-tenant)",
    )
    p.set_defaults(func=_push)


def _per_tenant(args: argparse.Namespace, ids_required: bool) -> tuple[tenants.Org, ...]:
    """The tenants' organisations, once the per-tenant flags are checked together."""
    from tenantpulse.grafana import tenants

    given = [f for f, v in (("--tenants", args.tenants), ("--gateway-url", args.gateway_url)) if v]
    given += ["--keys-dir"] if args.keys_dir else []
    if not args.per_tenant:
        if given:
            raise UsageError(f"{given[0]} only goes with --per-tenant")
        return ()
    for flag, value in (("--tenants", args.tenants), ("--gateway-url", args.gateway_url)):
        if not value:
            raise UsageError(f"--per-tenant needs {flag}")
    url = urlsplit(args.gateway_url)
    if url.scheme not in ("http", "https") or not url.netloc or url.query or url.fragment:
        raise UsageError(
            f"--gateway-url must be an http(s) URL such as http://tenantpulse-gateway:9110, not {args.gateway_url!r}"
        )
    return tenants.parse_tenants(args.tenants, ids_required)


def _generate(args: argparse.Namespace) -> int:
    from tenantpulse.grafana import generate, tenants
    from tenantpulse.grafana import spec as s

    orgs = _per_tenant(args, ids_required=True)
    spec = s.load(args.spec)
    if orgs:
        keys_dir = tenants.check_keys_dir(args.keys_dir or DEFAULT_KEYS_DIR)
        written = generate.replace(args.out, tenants.files(spec, orgs, args.gateway_url, keys_dir))
    else:
        written = generate.write(spec, args.out)
    print(f"wrote {len(written)} files under {args.out}")
    return 0


def _load_dir(path: Path) -> dict[str, dict[str, Any]]:
    folder = path / "dashboards" if (path / "dashboards").is_dir() else path
    files = sorted(folder.glob("*.json"))
    if not files:
        raise UsageError(f"no dashboard JSON files in {folder}")
    out: dict[str, dict[str, Any]] = {}
    for f in files:
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read dashboard {f}: {exc}") from None
        if not isinstance(data, dict) or not data.get("uid"):
            raise UsageError(f"{f} is not a dashboard with a uid")
        out[data["uid"]] = data
    return out


def _push(args: argparse.Namespace) -> int:
    from tenantpulse.grafana import generate, push
    from tenantpulse.grafana import spec as s

    if not args.grafana_url.startswith(("http://", "https://")):
        raise UsageError(f"--grafana-url must start with http:// or https://, not {args.grafana_url!r}")
    orgs = _per_tenant(args, ids_required=False)
    if orgs:
        return _push_per_tenant(args, orgs)
    if args.token_file is None:
        raise UsageError(
            "--basic-auth-file is for --per-tenant; give a service account token with --token-file"
        )
    token = push.read_token(args.token_file)
    boards = generate.dashboards(s.load(args.spec)) if args.spec else _load_dir(args.dir)
    for done in push.push(args.grafana_url, token, boards, args.folder):
        print(f"pushed {done.uid} (version {done.version}) {done.url}")
    return 0


def _push_per_tenant(args: argparse.Namespace, orgs: tuple[tenants.Org, ...]) -> int:
    from tenantpulse.grafana import push, tenants
    from tenantpulse.grafana import spec as s

    if args.spec is None:
        raise UsageError(
            "--per-tenant pushes from --spec (it prepares each organisation's dashboards itself)"
        )
    if args.basic_auth_file is None:
        raise UsageError(
            "--per-tenant needs --basic-auth-file (a Grafana server admin): Grafana's organisation API takes no token"
        )
    if not args.keys_dir:
        raise UsageError(
            "--per-tenant needs --keys-dir, the directory holding the organisations' gateway keys"
        )
    user, password = push.read_basic_auth(args.basic_auth_file)
    spec = s.load(args.spec)
    contents = []
    for org in (tenants.OPERATORS_ORG, *orgs):
        key = push.read_key(Path(args.keys_dir) / org.slug)
        contents.append(
            push.OrgContent(
                org.tenant,
                org.org_id,
                tenants.datasources(org, spec.grafana, args.gateway_url, key),
                tenants.dashboards(spec, org),
            )
        )
    folder = args.folder or FOLDER_UID
    for done in push.push_orgs(args.grafana_url, user, password, contents, folder, spec.grafana.folder):
        name = "operators" if done.name is None else repr(done.name)
        state = "created" if done.created else "found"
        print(f"organisation {name}: id {done.org_id} ({state}), datasources {', '.join(done.datasources)}")
        for board in done.dashboards:
            print(f"  pushed {board.uid} (version {board.version}) {board.url}")
    return 0
