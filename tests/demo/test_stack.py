"""``tenantpulse demo --duration``: exporter + traffic + real Prometheus come up, data flows, all stops."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.exporter import REPO
from tests.support.prometheus import require

pytestmark = pytest.mark.integration


def listening(url: str) -> bool:
    host, port = re.match(r"http://([\d.]+):(\d+)", url).groups()  # type: ignore[union-attr]
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, int(port))) == 0


def test_demo_runs_bounded_and_prometheus_sees_three_tenants(tmp_path: Path) -> None:
    require("prometheus")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tenantpulse.cli",
            "demo",
            "--duration",
            "8",
            "--workdir",
            str(tmp_path / "demo"),
            "--exporter-port",
            "0",
            "--prometheus-port",
            "0",
            "--scrape-interval",
            "1s",
            "--misbehave",
            "initech:traffic_drop",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    exporter_url = re.search(r"exporter\s+(http://\S+)", out).group(1)  # type: ignore[union-attr]
    prometheus_url = re.search(r"prometheus\s+(http://\S+)", out).group(1)  # type: ignore[union-attr]
    seen = dict(re.findall(r"(\w+)=(\d+)", out.split("events seen by prometheus:")[1].splitlines()[0]))
    assert set(seen) == {"acme", "globex", "initech"}, out
    assert all(int(v) > 0 for v in seen.values()), out
    assert int(seen["initech"]) < int(seen["acme"])  # the misbehaving tenant dropped its traffic
    assert "demo stopped" in out
    assert not listening(exporter_url) and not listening(prometheus_url)
    assert (tmp_path / "demo" / "prometheus-data").is_dir()


def test_demo_refuses_bad_flags(tmp_path: Path) -> None:
    from tenantpulse.cli import main

    assert main(["demo", "--workdir", str(tmp_path), "--duration", "-1"]) == 2
    assert (
        main(["demo", "--workdir", str(tmp_path), "--misbehave", "nobody:error_spike", "--duration", "1"])
        == 2
    )


def test_demo_without_its_extra_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tenantpulse.cli import main
    from tenantpulse.demo import cli as demo_cli

    monkeypatch.setattr(demo_cli, "EXTRA_MODULES", ("aiosmtpd", "no_such_module_tenantpulse"))
    assert main(["demo", "--workdir", str(tmp_path), "--duration", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "tenantpulse demo: error: the demo needs no_such_module_tenantpulse: "
        "pip install 'tenantpulse[demo]' (make demo does)"
    )


def test_the_command_line_does_not_load_the_demo_stack() -> None:
    probe = "import sys; from tenantpulse.cli import build_parser; build_parser(); print(sorted(m for m in sys.modules if m.startswith(('aiosmtpd', 'tenantpulse.demo.'))))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['tenantpulse.demo.cli']"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--misbehave", "acme:explode"], "--misbehave must be TENANT:MODE with TENANT in"),
        (["--scrape-interval", "1.5s"], "--scrape-interval must be a duration such as 1s or 15s, not '1.5s'"),
        (["--exporter-port", "70000"], "--exporter-port must be 0-65535 (0: any free port), not 70000"),
        (["--day-seconds", "0"], "--day-seconds must be positive"),
    ],
)
def test_bad_flags_are_refused_before_anything_starts(
    tmp_path: Path, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tenantpulse.cli import main

    workdir = tmp_path / "demo"
    assert main(["demo", "--workdir", str(workdir), *flags]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # no "demo stopped": nothing was started
    assert err.startswith(f"tenantpulse demo: error: {message}") and err.count("\n") == 1, err
    assert not workdir.exists()
