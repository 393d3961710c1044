"""``tenantpulse generate rules|alertmanager``: a dashboards spec is named as such, and ``--check`` says
what it checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantpulse.alert_rules import spec as alerts_spec
from tenantpulse.alert_rules.rules import RULES_FILE
from tenantpulse.cli import main
from tenantpulse.grafana import spec as dashboards_spec
from tests.support.prometheus import require

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("what", ["rules", "alertmanager"])
def test_a_dashboards_spec_is_named_as_such(
    what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = EXAMPLES / "dashboards.yaml"
    assert main(["generate", what, "--spec", str(spec), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"tenantpulse generate: error: {spec}: this is a dashboards spec, not an alerts spec\n"


def test_each_spec_knows_the_other_ones_top_level_keys() -> None:
    assert set(dashboards_spec.TOP_LEVEL) == alerts_spec.DASHBOARDS_TOP_LEVEL
    assert dashboards_spec.ALERTS_TOP_LEVEL == alerts_spec.TOP_LEVEL


@pytest.mark.integration
def test_check_says_what_it_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require("promtool")
    require("amtool")
    spec = str(EXAMPLES / "alerts.yaml")
    assert main(["generate", "rules", "--spec", spec, "--out", str(tmp_path / "r"), "--check"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"ok: promtool check rules and promtool test rules passed on {tmp_path / 'r' / RULES_FILE}"
    assert main(["generate", "alertmanager", "--spec", spec, "--out", str(tmp_path / "a"), "--check"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"ok: amtool check-config passed on {tmp_path / 'a' / 'alertmanager.yml'}"
