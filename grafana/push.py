"""Create or update dashboards in a running Grafana through its HTTP API (``POST /api/dashboards/db``).

Each failure Grafana can answer is turned into one sentence that says what to fix; the CLI prints
it and exits 2. Dashboards already pushed before a failure stay pushed (each POST is independent).

Per tenant (``push_orgs``), the organisation of each tenant is found or created by name
(``POST /api/orgs``, 409 when the name is taken, then ``GET /api/orgs/name/:name``), and every call
inside an organisation carries ``X-Grafana-Org-Id``: its datasources (``GET /api/datasources/uid/:uid``,
then ``PUT`` there or ``POST /api/datasources``), its folder (``POST /api/folders`` if missing) and its
dashboards. Everything is an upsert, so a rerun changes nothing. Grafana's organisation API takes only
basic auth of a server admin: a service account token belongs to one organisation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from tenantpulse.kernel.errors import UsageError

TIMEOUT_S = 10.0
ORG_HEADER = "X-Grafana-Org-Id"
# Fields of a provisioning file's datasource that the HTTP API does not take (the organisation is the header's).
PROVISIONING_ONLY = ("orgId", "editable")


class PushError(UsageError):
    """Grafana refused or could not be reached; the message names the dashboard and the fix."""


@dataclass(frozen=True)
class Pushed:
    uid: str
    url: str
    version: int | None


@dataclass(frozen=True)
class OrgContent:
    """What one organisation gets: datasources (keys in their ``secureJsonData``) and dashboards."""

    name: str | None  # the organisation to find or create by name; None: ``org_id`` as it is (organisation 1)
    org_id: int | None  # with a name: the id expected (checked), or None to take Grafana's
    datasources: Sequence[Mapping[str, Any]]
    dashboards: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class OrgPushed:
    name: str | None
    org_id: int
    created: bool
    datasources: list[str] = field(default_factory=list)
    dashboards: list[Pushed] = field(default_factory=list)


def _read_secret(path: Path, flag: str, what: str) -> str:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read {flag} {path}: {exc.strerror or exc}") from None
    if not text:
        raise UsageError(f"{flag} {path} is empty; put {what} in it")
    return text


def read_token(path: Path) -> str:
    return _read_secret(path, "--token-file", "a Grafana service account token")


def read_basic_auth(path: Path) -> tuple[str, str]:
    """``user:password`` of a Grafana server admin, on one line."""
    user, sep, password = _read_secret(path, "--basic-auth-file", "user:password").partition(":")
    if not sep or not user or not password:
        raise UsageError(f"--basic-auth-file {path} must hold user:password on one line")
    return user, password


def read_key(path: Path) -> str:
    return _read_secret(path, "key file", "the gateway key of this organisation")


def _message(body: Mapping[str, Any]) -> str:
    return str(body.get("message") or "")


def _explain(status: int, body: Mapping[str, Any], uid: str, folder: str | None, rejected: str) -> str:
    message = _message(body)
    if status == 401:
        return f"{rejected} ({message})"
    if status == 403:
        where = f"folder {folder!r}" if folder else "the General folder"
        return f"the token may not write dashboards in {where} (403 Forbidden): give it the Editor role ({message})"
    if status == 412:
        return (
            f"Grafana refused dashboard {uid!r} (412 Precondition Failed: {body.get('status') or message}): "
            "a dashboard with the same name exists in that folder or was changed meanwhile"
        )
    if status == 404 and folder:
        return f"folder {folder!r} not found in Grafana (404): create it or fix --folder ({message})"
    if status == 400:
        return f"Grafana refused dashboard {uid!r} as invalid (400): {message}"
    return f"Grafana answered {status} for dashboard {uid!r}: {message or 'no message'}"


def _reason(exc: requests.RequestException) -> str:
    """The root cause in a few words ("connection refused"): requests' own message is one long line of
    nested urllib3 reprs. It is the first operating-system error in the chain of causes."""
    if isinstance(exc, requests.Timeout):
        return f"no answer within {TIMEOUT_S:.0f} s"
    todo: list[object] = [exc]
    seen: set[int] = set()
    while todo:
        cause = todo.pop(0)
        if not isinstance(cause, BaseException) or id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror[:1].lower() + cause.strerror[1:]
        todo += [cause.__cause__, cause.__context__, getattr(cause, "reason", None), *cause.args]
    return exc.__class__.__name__


class Grafana:
    """One HTTP session with a Grafana, with a service account token or a user's (user, password)."""

    def __init__(self, url: str, auth: str | tuple[str, str]) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        if isinstance(auth, str):
            self.session.headers["Authorization"] = f"Bearer {auth}"
            self.rejected = "Grafana rejected the token (401 Unauthorized): check --token-file"
        else:
            self.session.auth = auth
            self.rejected = (
                "Grafana rejected the user and password (401 Unauthorized): check --basic-auth-file"
            )

    def __enter__(self) -> Grafana:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    def call(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, org_id: int | None = None
    ) -> tuple[int, dict[str, Any]]:
        """(status, JSON object answered); a body that is not a JSON object becomes ``{"message": ...}``."""
        headers = {ORG_HEADER: str(org_id)} if org_id is not None else {}
        try:
            r = self.session.request(method, self.url + path, json=body, headers=headers, timeout=TIMEOUT_S)
        except requests.RequestException as exc:
            raise PushError(f"cannot reach Grafana at {self.url}: {_reason(exc)}") from None
        try:
            answer = r.json()
        except ValueError:
            answer = {"message": r.text[:200]}
        return r.status_code, answer if isinstance(answer, dict) else {"message": str(answer)[:200]}

    def refused(self, status: int, answer: Mapping[str, Any], what: str) -> PushError:
        message = _message(answer) or "no message"
        if status == 401:
            return PushError(f"{self.rejected} ({message})")
        if status == 403:
            return PushError(
                f"Grafana refused to {what} (403 Forbidden): per-tenant push needs a Grafana server admin ({message})"
            )
        return PushError(f"Grafana answered {status} to {what}: {message}")

    def dashboards(
        self,
        dashboards: Mapping[str, Mapping[str, Any]],
        folder: str | None,
        message: str,
        org_id: int | None = None,
    ) -> list[Pushed]:
        """POST every dashboard with ``overwrite: true`` into ``folder`` (a folder uid); stop at the first error."""
        done: list[Pushed] = []
        for uid, dashboard in sorted(dashboards.items()):
            body: dict[str, Any] = {
                "dashboard": {**dashboard, "id": None},
                "overwrite": True,
                "message": message,
            }
            if folder:
                body["folderUid"] = folder
            status, answer = self.call("POST", "/api/dashboards/db", body, org_id)
            if status != 200:
                pushed = f" ({len(done)} pushed before it)" if done else ""
                raise PushError(_explain(status, answer, uid, folder, self.rejected) + pushed)
            done.append(Pushed(uid, str(answer.get("url", "")), answer.get("version")))
        return done


def push(
    grafana_url: str,
    token: str,
    dashboards: Mapping[str, Mapping[str, Any]],
    folder: str | None = None,
    message: str = "tenantpulse dashboards push",
) -> list[Pushed]:
    """POST every dashboard with ``overwrite: true`` into ``folder`` (a folder uid); stop at the first error."""
    with Grafana(grafana_url, token) as api:
        return api.dashboards(dashboards, folder, message)


def _organisation(api: Grafana, content: OrgContent, user: str) -> tuple[int, bool]:
    """The organisation's id, created if missing; (id, created)."""
    name = content.name
    assert name is not None
    status, answer = api.call("POST", "/api/orgs", {"name": name})
    created = status == 200
    if created:
        org_id = int(answer["orgId"])  # a number, or as the documentation shows it a string
    elif status == 409:  # the name is taken: that organisation, from an earlier run or made by hand
        status, answer = api.call("GET", f"/api/orgs/name/{quote(name, safe='')}")
        if status != 200:
            raise api.refused(status, answer, f"look up organisation {name!r}")
        org_id = int(answer["id"])
        # Calls carrying X-Grafana-Org-Id act as a member of that organisation: be one (409: already).
        status, answer = api.call(
            "POST", f"/api/orgs/{org_id}/users", {"loginOrEmail": user, "role": "Admin"}
        )
        if status not in (200, 409):
            raise api.refused(status, answer, f"add {user!r} to organisation {name!r}")
    else:
        raise api.refused(status, answer, f"create organisation {name!r}")
    if content.org_id is not None and content.org_id != org_id:
        raise PushError(
            f"organisation {name!r} has id {org_id} in Grafana, not {content.org_id} as --tenants says: "
            "fix --tenants (and regenerate the provisioning made with it)"
        )
    return org_id, created


def _datasource(api: Grafana, org_id: int, source: Mapping[str, Any]) -> str:
    body = {k: v for k, v in source.items() if k not in PROVISIONING_ONLY}
    uid = str(body["uid"])
    status, answer = api.call("GET", f"/api/datasources/uid/{quote(uid, safe='')}", org_id=org_id)
    if status == 200:
        method, path = "PUT", f"/api/datasources/uid/{quote(uid, safe='')}"
    elif status == 404:
        method, path = "POST", "/api/datasources"
    else:
        raise api.refused(status, answer, f"read datasource {uid!r} in organisation {org_id}")
    status, answer = api.call(method, path, body, org_id)
    if status != 200:
        raise api.refused(status, answer, f"write datasource {uid!r} in organisation {org_id}")
    return uid


def _folder(api: Grafana, org_id: int, uid: str, title: str) -> None:
    status, answer = api.call("GET", f"/api/folders/{quote(uid, safe='')}", org_id=org_id)
    if status == 404:
        status, answer = api.call("POST", "/api/folders", {"uid": uid, "title": title}, org_id)
    if status != 200:
        raise api.refused(status, answer, f"create folder {uid!r} in organisation {org_id}")


def push_orgs(
    grafana_url: str,
    user: str,
    password: str,
    orgs: Sequence[OrgContent],
    folder_uid: str,
    folder_title: str,
    message: str = "tenantpulse dashboards push --per-tenant",
) -> list[OrgPushed]:
    """Each organisation in turn: found or created, its datasources, its folder, its dashboards; stop at the
    first error (what was pushed before it stays)."""
    done: list[OrgPushed] = []
    with Grafana(grafana_url, (user, password)) as api:
        for content in orgs:
            if content.name is None:
                assert content.org_id is not None
                org_id, created = content.org_id, False
            else:
                org_id, created = _organisation(api, content, user)
            pushed = OrgPushed(content.name, org_id, created)
            pushed.datasources.extend(_datasource(api, org_id, source) for source in content.datasources)
            _folder(api, org_id, folder_uid, folder_title)
            pushed.dashboards.extend(api.dashboards(content.dashboards, folder_uid, message, org_id))
            done.append(pushed)
    return done
