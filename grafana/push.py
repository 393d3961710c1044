"""Create or update dashboards in a running Grafana through its HTTP API (``POST /api/dashboards/db``).

Each failure Grafana can answer is turned into one sentence that says what to fix; the CLI prints
it and exits 2. Dashboards already pushed before a failure stay pushed (each POST is independent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tenantpulse.kernel.errors import UsageError

TIMEOUT_S = 10.0


class PushError(UsageError):
    """Grafana refused or could not be reached; the message names the dashboard and the fix."""


@dataclass(frozen=True)
class Pushed:
    uid: str
    url: str
    version: int | None


def read_token(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read --token-file {path}: {exc.strerror or exc}") from None
    if not token:
        raise UsageError(f"--token-file {path} is empty; put a Grafana service account token in it")
    return token


def _explain(status: int, body: Mapping[str, Any], uid: str, folder: str | None) -> str:
    message = body.get("message") or ""
    if status == 401:
        return f"Grafana rejected the token (401 Unauthorized): check --token-file ({message})"
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


def push(
    grafana_url: str,
    token: str,
    dashboards: Mapping[str, Mapping[str, Any]],
    folder: str | None = None,
    message: str = "tenantpulse dashboards push",
) -> list[Pushed]:
    """POST every dashboard with ``overwrite: true`` into ``folder`` (a folder uid); stop at the first error."""
    url = grafana_url.rstrip("/") + "/api/dashboards/db"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    done: list[Pushed] = []
    with requests.Session() as session:
        for uid, dashboard in sorted(dashboards.items()):
            body: dict[str, Any] = {
                "dashboard": {**dashboard, "id": None},
                "overwrite": True,
                "message": message,
            }
            if folder:
                body["folderUid"] = folder
            try:
                r = session.post(url, json=body, headers=headers, timeout=TIMEOUT_S)
            except requests.RequestException as exc:
                raise PushError(f"cannot reach Grafana at {grafana_url}: {_reason(exc)}") from None
            try:
                answer = r.json()
            except ValueError:
                answer = {"message": r.text[:200]}
            if not isinstance(answer, dict):
                answer = {"message": str(answer)[:200]}
            if r.status_code != 200:
                pushed = f" ({len(done)} pushed before it)" if done else ""
                raise PushError(_explain(r.status_code, answer, uid, folder) + pushed)
            done.append(Pushed(uid, str(answer.get("url", "")), answer.get("version")))
    return done
