"""The ``tenantpulse`` command: one entry point, subcommands registered by each part of the bundle."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from tenantpulse.kernel.errors import UsageError
from tenantpulse.kernel.version import __version__

# Each module defines ``register(root, generate)``: it adds its subcommands to the root parser's
# subparsers and, if it generates files, to ``tenantpulse generate``'s subparsers. Each subcommand
# sets ``func`` (args -> exit code).
COMMAND_MODULES: tuple[str, ...] = (
    "tenantpulse.exporters.cli",
    "tenantpulse.demo.cli",
    "tenantpulse.security.cli",
    "tenantpulse.security.rekey",
    "tenantpulse.alert_rules.cli",
    "tenantpulse.grafana.cli",
    "tenantpulse.grafana.live_cli",
    "tenantpulse.anomaly_sidecar.backtest_cli",
    "tenantpulse.anomaly_sidecar.cli",
    "tenantpulse.gateway.cli",
    "tenantpulse.chart_assets",
)


class HelpFormatter(argparse.HelpFormatter):
    """Each option's help ends with its default, said once: not when the help already says it, nor for
    an option without one (None) or a switch (False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unsaid = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "(default" in text or unsaid or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """The root parser; subcommands get the same class (argparse's default), hence the same help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tenantpulse",
        description="Multi-tenant analytics for Prometheus, Grafana, Alertmanager, Jaeger.",
    )
    parser.add_argument("--version", action="version", version=f"tenantpulse {__version__}")
    root = parser.add_subparsers(dest="command", metavar="COMMAND")
    root.required = True
    gen = root.add_parser("generate", help="generate rules, Alertmanager config or dashboards from a spec")
    generate = gen.add_subparsers(dest="what", metavar="WHAT")
    generate.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(root, generate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from tenantpulse.otel.tracing import record_exit_code, traced_command  # OpenTelemetry: not for --help

    try:
        with traced_command(args.command, getattr(args, "what", None)) as span:
            return record_exit_code(span, int(args.func(args) or 0))
    except UsageError as exc:
        print(f"tenantpulse {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
