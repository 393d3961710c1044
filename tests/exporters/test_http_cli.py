"""``tenantpulse exporter``: bad flags and bad files are a message and exit code 2, never a traceback."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tenantpulse.cli import main
from tenantpulse.exporters.settings import ExporterSettings, load_pseudonym_keys
from tenantpulse.kernel.errors import UsageError
from tenantpulse.kernel.processes import python_env, tenantpulse_command
from tenantpulse.kernel.serving import REQUEST_TIMEOUT_ENV, request_timeout
from tests.support.exporter import write_keys_file
from tests.support.ports import free_port
from tests.support.shared import REPO


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


def run_server(command: str, keys: str, port: int, **env: str) -> subprocess.CompletedProcess[str]:
    """The real entry point of the exporter or the sidecar (they share ``kernel.serving``)."""
    args = ["--api-keys", keys] if command == "exporter" else ["--prometheus-url", "http://127.0.0.1:9"]
    return subprocess.run(
        tenantpulse_command(command, *args, "--port", str(port)),
        capture_output=True,
        text=True,
        timeout=120,
        env=python_env(**env),
        cwd=REPO,
    )


@pytest.mark.parametrize("command", ["exporter", "sidecar"])
def test_a_busy_port_is_one_line_and_exit_2(command: str, keys: str) -> None:
    """Regression: uvicorn logged a JSON line and the exporter exited 3, after its startup had run."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = run_server(command, keys, port)
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines() == [
        f"tenantpulse {command}: error: cannot listen on 127.0.0.1:{port}: address already in use"
    ]


def test_a_bad_request_timeout_is_one_line_and_exit_2(keys: str) -> None:
    run = run_server("exporter", keys, free_port(), **{REQUEST_TIMEOUT_ENV: "soon"})
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines() == [
        f"tenantpulse exporter: error: ${REQUEST_TIMEOUT_ENV} must be a positive number of seconds, "
        "not 'soon'"
    ]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("", 10.0),
        ("2.5", 2.5),
        (" 30 ", 30.0),
        ("0", None),
        ("-1", None),
        ("nan", None),
        ("inf", None),
        ("1s", None),
    ],
)
def test_request_timeout_setting(value: str, seconds: float | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUEST_TIMEOUT_ENV, value)
    if seconds is None:
        with pytest.raises(UsageError, match="positive number of seconds"):
            request_timeout()
    else:
        assert request_timeout() == seconds


def test_check_says_what_it_read_and_does_not_serve(
    keys: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = REPO / "examples" / "alerts.yaml"
    with socket.socket() as busy:  # were it to serve, it could not: the port is taken
        busy.bind(("127.0.0.1", 0))
        port = str(busy.getsockname()[1])
        argv = ["exporter", "--api-keys", keys, "--port", port, "--check"]
        assert main(argv) == 0
        assert capsys.readouterr().out == f"ok: 4 keys in {keys}\n"  # t1, t1:read, t1:write, admin
        assert main([*argv, "--alerts-spec", str(spec), "--rules-out", str(tmp_path / "rules")]) == 0
    assert capsys.readouterr().out == f"ok: 4 keys in {keys}, alerts spec {spec} (11 alerts)\n"
    assert not (tmp_path / "rules").exists()


def test_check_refuses_a_keys_file_without_its_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = tmp_path / "keys.yaml"  # only the entry `keys create` prints, as a first-time user would paste it
    line.write_text("  - {id: k1, key_sha256: " + "a" * 64 + ", tenant: acme, scopes: [read, write]}\n")
    assert main(["exporter", "--api-keys", str(line), "--check"]) == 2
    assert (
        capsys.readouterr().err
        == f"tenantpulse exporter: error: {line}: expected a mapping with a 'keys' list (the file starts with a 'keys:' line)\n"
    )
    line.write_text("keys:\n" + line.read_text())
    assert main(["exporter", "--api-keys", str(line), "--check"]) == 0
    assert capsys.readouterr().out == f"ok: 1 key in {line}\n"
