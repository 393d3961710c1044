"""``tenantpulse generate ...`` runs are one span each, flushed before the process exits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.otlp import OtlpReceiver

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-m", "tenantpulse.cli", *args],
        env=clean | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture()
def receiver():
    with OtlpReceiver() as r:
        yield r


def test_generate_run_is_one_span_exported_before_exit(receiver, tmp_path) -> None:
    done = run_cli(
        *("generate", "dashboards", "--spec", "examples/dashboards.yaml", "--out", str(tmp_path)),
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
    )
    assert done.returncode == 0, done.stderr
    # No waiting: the command flushed its spans before it returned.
    (span,) = receiver.spans
    assert (span.name, span.service) == ("tenantpulse generate dashboards", "tenantpulse-generate")
    assert span.attributes["tenantpulse.generate"] == "dashboards"
    assert span.attributes["tenantpulse.exit_code"] == 0
    assert span.status == "unset" and span.parent_span_id == ""


def test_failed_generate_run_is_a_failed_span(receiver, tmp_path) -> None:
    done = run_cli(
        *("generate", "dashboards", "--spec", str(tmp_path / "missing.yaml"), "--out", str(tmp_path)),
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (span,) = receiver.spans
    assert span.name == "tenantpulse generate dashboards"
    assert span.status == "error"


def test_bad_otel_setting_is_a_usage_error_not_a_traceback(tmp_path) -> None:
    done = run_cli(
        *("generate", "dashboards", "--spec", "examples/dashboards.yaml", "--out", str(tmp_path)),
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="ten percent",
    )
    assert done.returncode == 2
    assert "OTEL_TRACES_SAMPLER_ARG='ten percent' must be a number between 0 and 1" in done.stderr
    assert "Traceback" not in done.stderr


def test_sdk_disabled_wins_over_an_endpoint(receiver, tmp_path) -> None:
    done = run_cli(
        *("generate", "dashboards", "--spec", "examples/dashboards.yaml", "--out", str(tmp_path)),
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_SDK_DISABLED="true",
    )
    assert done.returncode == 0, done.stderr
    assert receiver.requests == 0


def test_console_exporter_prints_the_span(tmp_path) -> None:
    done = run_cli(
        *("generate", "dashboards", "--spec", "examples/dashboards.yaml", "--out", str(tmp_path)),
        OTEL_TRACES_EXPORTER="console",
    )
    assert done.returncode == 0, done.stderr
    assert '"name": "tenantpulse generate dashboards"' in done.stdout
