"""``tenantpulse dashboards push --per-tenant`` against a local server playing Grafana's HTTP API.

The server answers the organisation, datasource, folder and dashboard endpoints with the status codes
and JSON shapes of Grafana's API documentation (``POST /api/orgs``: 200 ``{"orgId": "<id>", "message":
"Organization created"}``, 409 when the name is taken; ``GET /api/orgs/name/:name``: the organisation;
datasources by uid: 404 when missing, ``{"datasource": ..., "id", "message", "name"}`` when written; ...),
keeps what it was given per organisation (the ``X-Grafana-Org-Id`` header), refuses a caller that is not
a member of the organisation it names, and records every request.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

import tenantpulse.cli
from tenantpulse.cli import main
from tenantpulse.grafana import provisioning, tenants
from tenantpulse.grafana import spec as s
from tests.grafana.test_structure import EXAMPLE
from tests.support.ports import free_port

USER, PASSWORD = "admin", "grafana-admin-pw"
KEYS = {"acme-music": "acme-read-key-0123456789", "globex": "globex-read-key-0123456789"}
OPERATORS_KEY = "ops-all-tenants-read-key-0123"
GATEWAY = "http://tenantpulse-gateway:9110"
Answer = tuple[int, dict[str, Any]]


@pytest.fixture(autouse=True)
def only_dashboard_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real CLI with just this part's subcommands, so other parts' work in progress cannot break it."""
    monkeypatch.setattr(tenantpulse.cli, "COMMAND_MODULES", ("tenantpulse.grafana.cli",))


class FakeGrafana:
    """Organisations, their members, datasources, folders and dashboards, as Grafana's API keeps them."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.orgs: dict[int, str] = {1: "Main Org."}
        self.members: dict[int, set[str]] = {1: {USER}}
        self.datasources: dict[int, dict[str, dict[str, Any]]] = {}
        self.folders: dict[int, dict[str, dict[str, Any]]] = {}
        self.dashboards: dict[int, dict[str, dict[str, Any]]] = {}
        self.next_id = 2
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length)) if length else None
                org = self.headers.get("X-Grafana-Org-Id")
                owner.requests.append({"method": self.command, "path": self.path, "org": org, "body": body})
                status, answer = owner.route(
                    self.command, self.path, self.headers.get("Authorization"), org, body
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = answer  # noqa: N815 - http.server's naming

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def add_org(self, name: str, members: set[str] | None = None) -> int:
        org_id, self.next_id = self.next_id, self.next_id + 1
        self.orgs[org_id] = name
        self.members[org_id] = set() if members is None else members
        return org_id

    def state(self) -> dict[str, Any]:
        """Everything kept, without the versions Grafana counts up on each overwrite."""
        boards = {
            o: {u: {k: v for k, v in d.items() if k != "version"} for u, d in b.items()}
            for o, b in self.dashboards.items()
        }
        return copy.deepcopy(
            {
                "orgs": self.orgs,
                "members": self.members,
                "ds": self.datasources,
                "folders": self.folders,
                "boards": boards,
            }
        )

    def route(self, method: str, path: str, auth: str | None, org: str | None, body: Any) -> Answer:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if auth != expected:
            return 401, {"message": "invalid username or password"}
        parts = [unquote(p) for p in path.split("?")[0].strip("/").split("/")]
        if parts[:2] == ["api", "orgs"]:
            return self.admin_orgs(method, parts[2:], body)
        org_id = int(org) if org else 1
        if org_id not in self.orgs or USER not in self.members[org_id]:
            return 401, {"message": "User not a member of organization"}
        if parts[:2] == ["api", "datasources"]:
            return self.datasource(method, parts[2:], org_id, body)
        if parts[:2] == ["api", "folders"]:
            folders = self.folders.setdefault(org_id, {})
            if method == "GET" and len(parts) == 3:
                return (
                    (200, folders[parts[2]])
                    if parts[2] in folders
                    else (404, {"message": "folder not found"})
                )
            if method == "POST" and len(parts) == 2:
                if body["uid"] in folders:
                    return 409, {"message": "a folder with the same uid already exists"}
                folders[body["uid"]] = {"id": len(folders) + 1, "uid": body["uid"], "title": body["title"]}
                return 200, folders[body["uid"]]
        if parts == ["api", "dashboards", "db"] and method == "POST":
            board = body["dashboard"]
            boards = self.dashboards.setdefault(org_id, {})
            if board["uid"] in boards and not body.get("overwrite"):
                return 412, {"status": "name-exists", "message": "A dashboard with the same name exists"}
            if body.get("folderUid") not in self.folders.get(org_id, {}):
                return 400, {"message": "folder not found"}
            version = boards.get(board["uid"], {}).get("version", 0) + 1
            boards[board["uid"]] = {"dashboard": board, "folderUid": body["folderUid"], "version": version}
            uid = board["uid"]
            return 200, {
                "id": 1,
                "uid": uid,
                "url": f"/d/{uid}/x",
                "status": "success",
                "version": version,
                "slug": "x",
            }
        return 404, {"message": "Not found"}

    def admin_orgs(self, method: str, rest: list[str], body: Any) -> Answer:
        if method == "POST" and not rest:
            if body["name"] in self.orgs.values():
                return 409, {"message": "Organization name taken"}
            org_id = self.add_org(body["name"], {USER})  # the creator becomes its Admin
            return 200, {"orgId": str(org_id), "message": "Organization created"}
        if method == "GET" and len(rest) == 2 and rest[0] == "name":
            for org_id, name in self.orgs.items():
                if name == rest[1]:
                    return 200, {"id": org_id, "name": name, "address": {"address1": "", "city": ""}}
            return 404, {"message": "Organization not found"}
        if method == "POST" and len(rest) == 2 and rest[1] == "users":
            members = self.members[int(rest[0])]
            if body["loginOrEmail"] in members:
                return 409, {"message": "User is already member of this organization"}
            members.add(body["loginOrEmail"])
            return 200, {"message": "User added to organization", "userId": 1}
        return 404, {"message": "Not found"}

    def datasource(self, method: str, rest: list[str], org_id: int, body: Any) -> Answer:
        sources = self.datasources.setdefault(org_id, {})
        if len(rest) == 2 and rest[0] == "uid":
            uid = rest[1]
            if uid not in sources:
                return 404, {"message": "Data source not found"}
            if method == "GET":  # secrets are never answered, only which fields are set
                shown = {k: v for k, v in sources[uid].items() if k != "secureJsonData"}
                return 200, shown | {
                    "secureJsonFields": {k: True for k in sources[uid].get("secureJsonData", {})}
                }
            if method == "PUT":
                sources[uid] = dict(body)
                return 200, {
                    "datasource": body,
                    "id": 1,
                    "message": "Datasource updated",
                    "name": body["name"],
                }
        if method == "POST" and not rest:
            if any(d["name"] == body["name"] for d in sources.values()):
                return 409, {"message": "data source with the same name already exists"}
            sources[body["uid"]] = dict(body)
            return 200, {"datasource": body, "id": 1, "message": "Datasource added", "name": body["name"]}
        return 404, {"message": "Not found"}


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = FakeGrafana()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    (tmp_path / "auth").write_text(f"{USER}:{PASSWORD}\n")
    keys = tmp_path / "keys"
    keys.mkdir()
    for tenant, key in KEYS.items():
        (keys / tenant).write_text(key + "\n")
    (keys / tenants.OPERATORS).write_text(OPERATORS_KEY)
    return tmp_path


def push(grafana: FakeGrafana, secrets: Path, tenant_list: str = "acme-music,globex", *extra: str) -> int:
    return main(
        ["dashboards", "push", "--spec", str(EXAMPLE), "--grafana-url", grafana.url, "--per-tenant"]
        + ["--basic-auth-file", str(secrets / "auth"), "--keys-dir", str(secrets / "keys")]
        + ["--tenants", tenant_list, "--gateway-url", GATEWAY, *extra]
    )


def calls(grafana: FakeGrafana) -> list[tuple[str, str, str | None]]:
    return [(r["method"], r["path"], r["org"]) for r in grafana.requests]


def expected_in_org(
    org_id: int, datasources: list[str], boards: int, existing: bool
) -> list[tuple[str, str, str | None]]:
    """Inside one organisation: each datasource read then written, the folder, then each dashboard."""
    org = str(org_id)
    out = []
    for uid in datasources:
        out.append(("GET", f"/api/datasources/uid/{uid}", org))
        out.append(
            ("PUT", f"/api/datasources/uid/{uid}", org) if existing else ("POST", "/api/datasources", org)
        )
    out.append(("GET", "/api/folders/tenantpulse", org))
    if not existing:
        out.append(("POST", "/api/folders", org))
    return out + [("POST", "/api/dashboards/db", org)] * boards


def test_first_push_creates_or_finds_every_organisation_then_fills_it(
    grafana: FakeGrafana, secrets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    globex = grafana.add_org("globex")  # made by hand before: 409, looked up, joined
    assert push(grafana, secrets) == 0
    spec = s.load(EXAMPLE)
    boards = {t: len(tenants.dashboards(spec, tenants.Org(t))) for t in (None, *KEYS)}
    operators_ds = [provisioning.GATEWAY_UID, provisioning.JAEGER_UID]
    acme = 3
    assert calls(grafana) == (
        expected_in_org(1, operators_ds, boards[None], existing=False)
        + [
            ("POST", "/api/orgs", None),
            *expected_in_org(acme, [provisioning.GATEWAY_UID], boards["acme-music"], False),
        ]
        + [
            ("POST", "/api/orgs", None),
            ("GET", "/api/orgs/name/globex", None),
            ("POST", f"/api/orgs/{globex}/users", None),
        ]
        + expected_in_org(globex, [provisioning.GATEWAY_UID], boards["globex"], False)
    )
    assert grafana.orgs == {1: "Main Org.", globex: "globex", acme: "acme-music"}
    assert sorted(grafana.dashboards[acme]) == sorted(tenants.dashboards(spec, tenants.Org("acme-music")))
    out = capsys.readouterr().out
    assert (
        "organisation 'acme-music': id 3 (created)" in out
        and f"organisation 'globex': id {globex} (found)" in out
    )


def test_no_organisation_holds_another_organisations_key(grafana: FakeGrafana, secrets: Path) -> None:
    assert push(grafana, secrets) == 0
    by_org = {1: OPERATORS_KEY, **{i: KEYS[n] for i, n in grafana.orgs.items() if n in KEYS}}
    every_key = set(by_org.values())
    for org_id, key in by_org.items():
        gateway = grafana.datasources[org_id][provisioning.GATEWAY_UID]
        assert gateway["url"] == GATEWAY and gateway["basicAuth"] is True
        assert gateway["secureJsonData"] == {"basicAuthPassword": key}
        sent = json.dumps([r["body"] for r in grafana.requests if r["org"] == str(org_id)])
        assert [k for k in every_key if k in sent] == [key], f"organisation {org_id} was sent another key"
        boards = grafana.dashboards[org_id].values()
        tenant = grafana.orgs[org_id] if org_id != 1 else None
        for board in boards:
            pinned = next(v for v in board["dashboard"]["templating"]["list"] if v["name"] == "tenant")
            assert (
                (pinned["type"] == "constant" and pinned["query"] == tenant)
                if tenant
                else pinned["type"] == "query"
            )
    assert not any(
        r["body"] and OPERATORS_KEY in json.dumps(r["body"]) for r in grafana.requests if r["org"] != "1"
    )
    assert all(r["org"] is None for r in grafana.requests if r["path"].startswith("/api/orgs"))


def test_a_rerun_changes_nothing(grafana: FakeGrafana, secrets: Path) -> None:
    assert push(grafana, secrets) == 0
    before, first = grafana.state(), len(grafana.requests)
    assert push(grafana, secrets, "acme-music=2,globex=3") == 0
    assert grafana.state() == before
    again = calls(grafana)[first:]
    assert not [c for c in again if c[0] == "POST" and c[1] in ("/api/datasources", "/api/folders")]
    assert [c for c in again if c[1].startswith("/api/orgs")] == [
        ("POST", "/api/orgs", None), ("GET", "/api/orgs/name/acme-music", None), ("POST", "/api/orgs/2/users", None),
        ("POST", "/api/orgs", None), ("GET", "/api/orgs/name/globex", None), ("POST", "/api/orgs/3/users", None),
    ]  # fmt: skip


def test_a_wrong_organisation_id_stops_before_writing_into_it(
    grafana: FakeGrafana, secrets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grafana.add_org("acme-music", {USER})
    assert push(grafana, secrets, "acme-music=5") == 2
    assert "organisation 'acme-music' has id 2 in Grafana, not 5 as --tenants says" in capsys.readouterr().err
    assert 2 not in grafana.datasources


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("password", "Grafana rejected the user and password (401 Unauthorized): check --basic-auth-file"),
        ("token", "--per-tenant needs --basic-auth-file (a Grafana server admin)"),
        ("key", "cannot read key file"),
        ("dir", "--per-tenant pushes from --spec"),
    ],
)
def test_refusals_are_one_line_and_exit_2(
    grafana: FakeGrafana, secrets: Path, change: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["dashboards", "push", "--spec", str(EXAMPLE), "--grafana-url", grafana.url, "--per-tenant"]
    argv += ["--tenants", "acme-music", "--gateway-url", GATEWAY, "--keys-dir", str(secrets / "keys")]
    argv += ["--basic-auth-file", str(secrets / "auth")]
    if change == "password":
        (secrets / "auth").write_text(f"{USER}:wrong")
    elif change == "token":
        (secrets / "token").write_text("glsa_token")
        argv[-2:] = ["--token-file", str(secrets / "token")]
    elif change == "key":
        (secrets / "keys" / "acme-music").unlink()
    else:
        argv[2:4] = ["--dir", str(secrets)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not grafana.dashboards
