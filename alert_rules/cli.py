"""``tenantpulse generate rules|alertmanager --spec FILE --out DIR [--check]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from tenantpulse.alert_rules import checks
from tenantpulse.kernel.errors import SpecError


def register(root: argparse._SubParsersAction, generate: argparse._SubParsersAction) -> None:
    del root  # only generators here
    rules = generate.add_parser(
        "rules",
        help="Prometheus rule file, PrometheusRule object and promtool unit tests from an alert spec",
    )
    _common(rules)
    rules.add_argument("--name", default="tenantpulse", help="metadata.name of the PrometheusRule")
    rules.add_argument("--namespace", help="metadata.namespace of the PrometheusRule (default: none)")
    rules.set_defaults(func=_rules)
    am = generate.add_parser(
        "alertmanager", help="alertmanager.yml and notification templates from an alert spec"
    )
    _common(am)
    am.set_defaults(func=_alertmanager)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", required=True, type=Path, help="alert spec YAML (see examples/alerts.yaml)")
    p.add_argument("--out", required=True, type=Path, help="output directory (created if missing)")
    p.add_argument("--check", action="store_true", help="also run promtool / amtool on the output")


def _rules(args: argparse.Namespace) -> int:
    from tenantpulse.alert_rules.rules import RULES_FILE, TESTS_FILE, write_rules  # yaml: not for --help
    from tenantpulse.alert_rules.spec import load_spec

    paths = write_rules(load_spec(args.spec), args.out, args.name, args.namespace)
    for p in paths:
        print(p)
    if args.check:
        checks.check_rules(args.out / RULES_FILE)
        checks.test_rules(args.out / TESTS_FILE)
        print(f"ok: promtool check rules and promtool test rules passed on {args.out / RULES_FILE}")
    return 0


def _alertmanager(args: argparse.Namespace) -> int:
    from tenantpulse.alert_rules.alertmanager import write_alertmanager
    from tenantpulse.alert_rules.spec import load_spec

    spec = load_spec(args.spec)
    try:
        paths = write_alertmanager(spec, args.out)
    except SpecError as exc:  # routing.default_receiver is checked against the channels here
        raise exc.within(args.spec) from None
    for p in paths:
        print(p)
    if args.check:
        checks.check_alertmanager(paths[0])
        print(f"ok: amtool check-config passed on {paths[0]}")
    return 0
