"""``tenantpulse gateway``: bad options are one line and exit code 2, never a traceback; help names every flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantpulse.cli import main
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
        (["--backend", "prometheus:9090"], "--backend must be an http(s) URL"),
        (["--backend", "http://p:9090/?x=1"], "--backend must be an http(s) URL"),
        (["--max-points", "0"], "--max-points must be at least 1"),
        (["--max-query-length", "-1"], "--max-query-length must be at least 1"),
        (["--max-concurrent-per-tenant", "0"], "--max-concurrent-per-tenant must be at least 1"),
        (["--timeout", "soon"], "--timeout: invalid duration"),
        (["--mimir-tenant-header", "X Org"], "--mimir-tenant-header must be an HTTP header name"),
        (["--tls-cert", "/nonexistent/cert.pem"], "--tls-cert and --tls-key go together"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    keys: str, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gateway", "--backend", "http://127.0.0.1:9090", "--keys", keys, "--port", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_missing_or_broken_keys_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backend = ["--backend", "http://127.0.0.1:9090"]
    assert main(["gateway", *backend, "--keys", str(tmp_path / "nope.yaml")]) == 2
    assert "--keys: no such file" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text("keys:\n  - {key: k, tenant: t1, scopes: [fly]}\n")
    assert (
        main(["gateway", *backend, "--api-keys", str(broken), "--port", "1"]) == 2
    )  # the exporter's flag works too
    err = capsys.readouterr().err
    assert "scopes" in err and len(err.strip().splitlines()) == 1


def test_unknown_backend_kind_is_an_argparse_error(keys: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["gateway", "--backend", "http://x:1", "--keys", keys, "--backend-kind", "graphite"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_help_explains_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["gateway", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    from tenantpulse.cli import build_parser

    gateway = build_parser()._subparsers._group_actions[0].choices["gateway"]  # type: ignore[union-attr]
    for action in gateway._actions:
        assert action.help, f"{action.option_strings} has no help"
    for flag in (
        "--backend",
        "--keys",
        "--host",
        "--port",
        "--backend-kind",
        "--mimir-tenant-header",
        "--timeout",
    ):
        assert flag in out
