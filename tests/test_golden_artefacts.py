"""Every generated artefact is byte-identical to the committed copy in ``tests/golden/``.

Refactors must not change what SREs deploy; a deliberate change regenerates the copy
(``tenantpulse generate rules|alertmanager|dashboards --spec examples/... --out tests/golden/...``)
and the diff is reviewed with the change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantpulse.cli import main

GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = Path(__file__).parents[1] / "examples"
CASES = [
    ("rules", "alerts.yaml"),
    ("alertmanager", "alerts.yaml"),
    ("dashboards", "dashboards.yaml"),
]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("what", "spec"), CASES)
def test_generated_files_match_the_committed_copy(tmp_path: Path, what: str, spec: str) -> None:
    assert main(["generate", what, "--spec", str(EXAMPLES / spec), "--out", str(tmp_path)]) == 0
    expected = _files(GOLDEN / what)
    assert expected, f"no golden files under {GOLDEN / what}"
    actual = _files(tmp_path)
    assert sorted(actual) == sorted(expected)
    for name, content in expected.items():
        assert actual[name] == content, f"{what}/{name} differs from tests/golden/{what}/{name}"
