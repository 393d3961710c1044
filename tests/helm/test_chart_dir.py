"""``tenantpulse generate chart`` outside the repository: ``--chart-dir`` names the chart, and without a
chart to default to the error names the option."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tenantpulse import chart_assets
from tenantpulse.cli import main

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "tenantpulse"


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shell outside the checkout."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_generates_into_a_copy_of_the_chart_from_anywhere(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = elsewhere / "chart"
    shutil.copytree(CHART, chart)
    shutil.rmtree(chart / "files")
    assert main(["generate", "chart", "--chart-dir", str(chart)]) == 0
    assert chart_assets.on_disk(chart / "files") == chart_assets.on_disk(CHART / "files")  # same bytes
    capsys.readouterr()
    assert main(["generate", "chart", "--chart-dir", str(chart), "--check"]) == 0
    files = len(chart_assets.on_disk(chart / "files"))
    assert (
        capsys.readouterr().out == f"ok: the {files} generated files under {chart / 'files'} are up to date\n"
    )


def test_the_default_is_the_checkouts_chart(elsewhere: Path) -> None:
    assert main(["generate", "chart", "--check"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "no chart to refresh outside the repository: give --chart-dir (or --out)"),
        (["--chart-dir", "nowhere"], "--chart-dir nowhere: not a Helm chart (no Chart.yaml)"),
    ],
)
def test_no_chart_is_one_line_naming_the_option(
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(chart_assets, "REPO_CHART", elsewhere / "no-checkout-here")  # as when installed
    assert main(["generate", "chart", *argv]) == 2
    assert capsys.readouterr().err == f"tenantpulse generate: error: {message}\n"
