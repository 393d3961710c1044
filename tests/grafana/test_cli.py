"""``tenantpulse generate dashboards`` and ``dashboards push``: an alerts spec is named as such, and an
unreachable Grafana is one short line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantpulse.cli import main
from tests.support.ports import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("glsa_test_token_123\n")
    return path


def test_an_alerts_spec_is_named_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = EXAMPLES / "alerts.yaml"
    assert main(["generate", "dashboards", "--spec", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"tenantpulse generate: error: {spec}: this is an alerts spec, not a dashboards spec\n"
    assert not (tmp_path / "out").exists()


def push(url: str, token_file: Path) -> list[str]:
    return ["dashboards", "push", "--spec", str(EXAMPLES / "dashboards.yaml"), "--grafana-url", url,
            "--token-file", str(token_file)]  # fmt: skip


def test_unreachable_grafana_is_one_short_line(token_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert main(push(url, token_file)) == 2
    err = capsys.readouterr().err
    assert err == f"tenantpulse dashboards: error: cannot reach Grafana at {url}: connection refused\n"


def test_a_grafana_url_without_scheme_is_refused(
    token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(push("grafana:3000", token_file)) == 2
    err = capsys.readouterr().err
    assert err == (
        "tenantpulse dashboards: error: --grafana-url must start with http:// or https://, not 'grafana:3000'\n"
    )
