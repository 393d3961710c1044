"""`tenantpulse dashboards push` against a local HTTP server standing in for Grafana's dashboard API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import tenantpulse.cli
from tenantpulse.cli import main
from tenantpulse.grafana import generate
from tenantpulse.grafana import spec as s
from tests.support.ports import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dashboards.yaml"
TOKEN = "glsa_test_token_123"


@pytest.fixture(autouse=True)
def only_dashboard_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real CLI with just this part's subcommands, so other parts' work in progress cannot break it."""
    assert "tenantpulse.grafana.cli" in tenantpulse.cli.COMMAND_MODULES
    monkeypatch.setattr(tenantpulse.cli, "COMMAND_MODULES", ("tenantpulse.grafana.cli",))


class FakeGrafana:
    """Records each request; answers 200 like Grafana, or the status a test sets."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.answer: dict[str, Any] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                owner.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                )
                uid = body["dashboard"]["uid"]
                answer = owner.answer or {"status": "success", "uid": uid, "url": f"/d/{uid}", "version": 3}
                data = json.dumps(answer).encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = FakeGrafana()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def push(grafana: FakeGrafana, token_file: Path, *extra: str) -> int:
    return main(
        [
            "dashboards",
            "push",
            "--spec",
            str(EXAMPLE),
            "--grafana-url",
            grafana.url,
            "--token-file",
            str(token_file),
        ]
        + list(extra)
    )


def test_push_posts_every_dashboard_with_overwrite_and_folder(
    grafana: FakeGrafana, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert push(grafana, token_file, "--folder", "tp-folder") == 0
    assert len(grafana.requests) == len(generate.dashboards(s.load(EXAMPLE))) >= 4
    for req in grafana.requests:
        assert req["path"] == "/api/dashboards/db"
        assert req["auth"] == f"Bearer {TOKEN}"
        body = req["body"]
        assert body["overwrite"] is True and body["folderUid"] == "tp-folder"
        assert body["dashboard"]["id"] is None and body["dashboard"]["uid"].startswith("tp-")
        assert body["dashboard"]["panels"]
    assert "pushed tp-custom-reliability (version 3) /d/tp-custom-reliability" in capsys.readouterr().out


def test_push_from_a_generated_directory(grafana: FakeGrafana, token_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["generate", "dashboards", "--spec", str(EXAMPLE), "--out", str(out)]) == 0
    args = [
        "dashboards",
        "push",
        "--dir",
        str(out),
        "--grafana-url",
        grafana.url,
        "--token-file",
        str(token_file),
    ]
    assert main(args) == 0
    sent = sorted(r["body"]["dashboard"]["uid"] for r in grafana.requests)
    assert sent == sorted(p.stem for p in (out / "dashboards").glob("*.json"))
    assert all("folderUid" not in r["body"] for r in grafana.requests)


@pytest.mark.parametrize(
    ("status", "answer", "expected"),
    [
        (401, {"message": "invalid API key"}, "rejected the token (401 Unauthorized): check --token-file"),
        (403, {"message": "Access denied"}, "may not write dashboards in folder 'tp-folder' (403 Forbidden)"),
        (
            412,
            {"status": "name-exists", "message": "A dashboard with the same name exists"},
            "412 Precondition",
        ),
        (500, {"message": "database is locked"}, "Grafana answered 500"),
    ],
)
def test_push_errors_are_clear_and_exit_2(
    grafana: FakeGrafana,
    token_file: Path,
    capsys: pytest.CaptureFixture[str],
    status: int,
    answer: dict[str, str],
    expected: str,
) -> None:
    grafana.status, grafana.answer = status, answer
    assert push(grafana, token_file, "--folder", "tp-folder") == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert len(grafana.requests) == 1, "push stops at the first refusal"


def test_unreachable_grafana_exits_2(token_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    args = [
        "dashboards",
        "push",
        "--spec",
        str(EXAMPLE),
        "--grafana-url",
        url,
        "--token-file",
        str(token_file),
    ]
    assert main(args) == 2
    assert f"cannot reach Grafana at {url}" in capsys.readouterr().err


def test_missing_or_empty_token_file_exits_2(
    grafana: FakeGrafana, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert push(grafana, tmp_path / "absent") == 2
    assert "cannot read --token-file" in capsys.readouterr().err
    (tmp_path / "empty").write_text("\n")
    assert push(grafana, tmp_path / "empty") == 2
    assert "is empty" in capsys.readouterr().err
    assert grafana.requests == []
