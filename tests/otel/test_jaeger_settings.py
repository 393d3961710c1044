"""``OTEL_TRACES_EXPORTER=jaeger`` as read from the environment, and every entry point without the extra.

Needs no thrift, so it runs with and without the ``jaeger`` extra installed (tests/otel/test_jaeger.py,
which exports to a loopback Jaeger, is skipped without it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tenantpulse.kernel.errors import UsageError
from tenantpulse.otel.jaeger import MISSING_EXTRA
from tenantpulse.otel.tracing import exporter_choice

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**env: str) -> dict[str, str]:
    """This process's environment without any OTEL_* setting, plus ``env``."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | env


# --- Reading the environment ------------------------------------------------------------------------


def test_jaeger_is_chosen_only_by_name() -> None:
    assert exporter_choice({"OTEL_TRACES_EXPORTER": "Jaeger"}) == "jaeger"
    assert exporter_choice({"OTEL_EXPORTER_JAEGER_ENDPOINT": "http://j:14268/api/traces"}) == "none"
    assert (
        exporter_choice({"OTEL_TRACES_EXPORTER": "jaeger", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) == "jaeger"
    )


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"OTEL_EXPORTER_JAEGER_AGENT_PORT": "six"}, "OTEL_EXPORTER_JAEGER_AGENT_PORT='six' must be a port"),
        (
            {"OTEL_EXPORTER_JAEGER_AGENT_PORT": "70000"},
            "OTEL_EXPORTER_JAEGER_AGENT_PORT='70000' must be a port",
        ),
        (
            {"OTEL_EXPORTER_JAEGER_TIMEOUT": "1.5"},
            "OTEL_EXPORTER_JAEGER_TIMEOUT='1.5' must be a whole number",
        ),
        (
            {"OTEL_EXPORTER_JAEGER_ENDPOINT": "jaeger:14268"},
            "OTEL_EXPORTER_JAEGER_ENDPOINT='jaeger:14268' must be",
        ),
    ],
)
def test_bad_jaeger_settings_are_usage_errors(setting: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        exporter_choice({"OTEL_TRACES_EXPORTER": "jaeger", **setting})


def test_other_exporters_never_load_thrift() -> None:
    """The extra is imported only when chosen: an OTLP process pays nothing for it."""
    code = (
        "import sys; from tenantpulse.otel.tracing import build_provider; "
        "assert build_provider('t') is not None; print(sorted(m for m, mod in sys.modules.items() "
        "if mod is not None and (m.split('.')[0] == 'thrift' or m.startswith('opentelemetry.exporter.jaeger'))))"
    )
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- Without the extra ------------------------------------------------------------------------------

# Runs the CLI with a module made unimportable, as in an install without the extra.
WITHOUT = (
    "import sys; sys.modules[sys.argv.pop(1)] = None; from tenantpulse.cli import main; sys.exit(main())"
)

ENTRY_POINTS = {
    "exporter": ["exporter", "--port", "9", "--api-keys", "keys.yaml"],
    "sidecar": ["sidecar", "--prometheus-url", "http://127.0.0.1:9", "--port", "9"],
    "gateway": ["gateway", "--backend", "http://127.0.0.1:9", "--keys", "keys.yaml", "--port", "9"],
    "generate": ["generate", "dashboards", "--spec", "examples/dashboards.yaml", "--out", "out"],
}


@pytest.mark.parametrize(
    ("command", "blocked"),
    [(name, "opentelemetry.exporter.jaeger") for name in ENTRY_POINTS] + [("exporter", "thrift")],
)
def test_without_the_extra_each_entry_point_says_so_and_exits_2(command: str, blocked: str, tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT, blocked, *ENTRY_POINTS[command]],
        env=clean_env(OTEL_TRACES_EXPORTER="jaeger"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"tenantpulse {command}: error: {MISSING_EXTRA}"]
