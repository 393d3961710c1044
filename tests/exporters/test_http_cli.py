"""``tenantpulse exporter``: bad flags and bad files are a message and exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantpulse.cli import main
from tenantpulse.exporters.settings import ExporterSettings, load_pseudonym_keys
from tenantpulse.kernel.errors import UsageError
from tests.support.exporter import write_keys_file


@pytest.fixture
def keys(tmp_path: Path) -> str:
    path = tmp_path / "keys.yaml"
    write_keys_file(path, ["t1"])
    return str(path)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--port", "70000"], "--port must be 1-65535"),
        (["--rate-limit", "0"], "--rate-limit must be a positive"),
        (["--rate-burst", "0.5"], "--rate-burst must be at least 1"),
        (["--max-body-bytes", "0"], "--max-body-bytes must be at least 1"),
        (["--max-series-per-tenant", "-3"], "--max-series-per-tenant must be at least 1"),
        (["--pseudonym-key-file", "/nonexistent/pk.yaml"], "cannot read pseudonym key file"),
        (["--tls-cert", "/nonexistent/cert.pem"], "--tls-cert and --tls-key go together"),
    ],
)
def test_bad_flags_exit_2_with_a_message(
    keys: str, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["exporter", "--api-keys", keys, "--port", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_or_broken_keys_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exporter", "--api-keys", str(tmp_path / "nope.yaml")]) == 2
    assert "--api-keys: no such file" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text("keys:\n  - {key: k, tenant: t1, scopes: [fly]}\n")
    assert main(["exporter", "--api-keys", str(broken), "--port", "1"]) == 2
    assert "scopes" in capsys.readouterr().err


def test_unknown_choice_is_an_argparse_error(keys: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["exporter", "--api-keys", keys, "--metrics-auth", "maybe"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_help_lists_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["exporter", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--api-keys", "--rate-limit", "--max-body-bytes", "--metrics-auth", "--pseudonym-key-file"):
        assert flag in out


def test_pseudonym_key_file(tmp_path: Path) -> None:
    path = tmp_path / "pk.yaml"
    path.write_text("current: v2\nkeys:\n  v1: aaaaaaaaaaaaaaaaaaaa\n  v2: bbbbbbbbbbbbbbbbbbbb\n")
    keys, current = load_pseudonym_keys(path)
    assert current == "v2" and keys["v1"] == b"a" * 20
    path.write_text("keys:\n  v1: short\n")
    with pytest.raises(UsageError, match="at least 16"):
        load_pseudonym_keys(path)
    path.write_text("current: v9\nkeys:\n  v1: aaaaaaaaaaaaaaaaaaaa\n")
    with pytest.raises(UsageError, match="v9"):
        load_pseudonym_keys(path)


def test_settings_without_pseudonym_keys_get_a_random_one(tmp_path: Path) -> None:
    a = ExporterSettings(api_keys_file=tmp_path / "k.yaml")
    b = ExporterSettings(api_keys_file=tmp_path / "k.yaml")
    assert a.pseudonym_key_current in a.pseudonym_keys
    assert a.pseudonym_keys != b.pseudonym_keys
