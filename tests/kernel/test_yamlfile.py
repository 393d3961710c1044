"""A YAML file that does not parse is one line naming the file, the line and the column."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantpulse.kernel.errors import UsageError
from tenantpulse.kernel.yamlfile import read_yaml


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "alerts:\n  - name: X\n   bad: [\n",
            "at line 3, column 4: expected <block end>, but found '<block mapping start>' "
            "(while parsing a block collection at line 2)",
        ),
        ("a: b: c\n", "at line 1, column 5: mapping values are not allowed here"),
        (
            "a: 'open\n",
            "at line 2, column 1: found unexpected end of stream (while scanning a quoted scalar at line 1)",
        ),
        ("ok: 1\nbad: \x01\n", "at line 2, column 6: character #x0001: special characters are not allowed"),
    ],
)
def test_malformed_yaml_is_one_line_naming_file_line_and_column(
    tmp_path: Path, text: str, where: str
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        read_yaml(path, "spec file")
    assert str(caught.value) == f"cannot read spec file {path}: not valid YAML {where}"


def test_the_cli_prints_it_on_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tenantpulse.cli import main

    path = tmp_path / "alerts.yaml"
    path.write_text("alerts:\n  - name: X\n   bad: [\n")
    assert main(["generate", "rules", "--spec", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "<unicode string>" not in err
    assert err.startswith(
        f"tenantpulse generate: error: cannot read spec file {path}: not valid YAML at line 3, "
    )
