"""``tenantpulse generate dashboards`` and ``tenantpulse dashboards push``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tenantpulse.grafana import generate, push
from tenantpulse.grafana import spec as s
from tenantpulse.kernel.errors import UsageError


def register(root: argparse._SubParsersAction, gen: argparse._SubParsersAction) -> None:
    g = gen.add_parser(
        "dashboards",
        help="Grafana dashboards, provisioning files and ConfigMaps from a dashboards spec",
        description="Writes DIR/dashboards/*.json, DIR/provisioning/{datasources,dashboards}/tenantpulse.yaml "
        "and DIR/configmaps/*.yaml (deterministic: same spec, same bytes).",
    )
    g.add_argument(
        "--spec", type=Path, required=True, help="dashboards spec (YAML), e.g. examples/dashboards.yaml"
    )
    g.add_argument("--out", type=Path, required=True, help="output directory")
    g.set_defaults(func=_generate)

    d = root.add_parser("dashboards", help="work with dashboards in a running Grafana")
    sub = d.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    p = sub.add_parser(
        "push",
        help="create or update dashboards in Grafana (POST /api/dashboards/db, overwrite)",
        description="Push the dashboards of a spec (--spec) or of a generated directory (--dir).",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--spec", type=Path, help="dashboards spec (YAML) to generate and push")
    src.add_argument("--dir", type=Path, help="a `generate dashboards` output directory (or its dashboards/)")
    p.add_argument("--grafana-url", required=True, help="e.g. http://grafana:3000")
    p.add_argument(
        "--token-file", type=Path, required=True, help="file holding a Grafana service account token"
    )
    p.add_argument("--folder", help="uid of the Grafana folder to put the dashboards in (default: General)")
    p.set_defaults(func=_push)


def _generate(args: argparse.Namespace) -> int:
    written = generate.write(s.load(args.spec), args.out)
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
    if not args.grafana_url.startswith(("http://", "https://")):
        raise UsageError(f"--grafana-url must start with http:// or https://, not {args.grafana_url!r}")
    token = push.read_token(args.token_file)
    boards = generate.dashboards(s.load(args.spec)) if args.spec else _load_dir(args.dir)
    for done in push.push(args.grafana_url, token, boards, args.folder):
        print(f"pushed {done.uid} (version {done.version}) {done.url}")
    return 0
