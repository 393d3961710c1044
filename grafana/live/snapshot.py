"""PNG pictures of a running live view, one per dashboard, taken by headless Chromium (the system's,
driven by playwright: no browser download), so a dashboard change can be looked at in a pull request.

A page is taken once it says it has drawn every panel (``<body data-state="ready">``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from tenantpulse.kernel.errors import UsageError

CHROMIUM = "/usr/bin/chromium"
# What works as root in a container, with nothing reaching out: a fresh profile each time.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
READY = "document.body.dataset.state === 'ready' || document.body.dataset.state === 'error'"


def find_chromium(path: str | None = None) -> str:
    found = shutil.which(path or CHROMIUM) or (None if path else shutil.which("chromium"))
    if found is None:
        raise UsageError(f"no Chromium at {path or CHROMIUM}: apt-get install chromium (make system does)")
    return found


@contextmanager
def browser_context(chromium: str, key: str, width: int = 1600, height: int = 1000) -> Iterator[Any]:
    """A playwright browser context with the viewer's key as basic-auth credentials."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise UsageError("snapshots need playwright: pip install 'tenantpulse[demo]'") from None
    with tempfile.TemporaryDirectory(prefix="tenantpulse-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=list(FLAGS),
            viewport={"width": width, "height": height},
            http_credentials={"username": "tenantpulse", "password": key},
        )
        try:
            yield context
        finally:
            context.close()


def dashboard_url(base: str, uid: str, variables: dict[str, str], range_: str | None) -> str:
    params = {f"var-{k}": v for k, v in variables.items()} | ({"range": range_} if range_ else {})
    return f"{base.rstrip('/')}/d/{uid}" + (f"?{urlencode(params)}" if params else "")


def dashboards(base: str, key: str) -> list[dict[str, Any]]:
    """The live view's dashboards, as its API lists them for this key."""
    try:
        r = requests.get(f"{base.rstrip('/')}/api/dashboards", auth=("tenantpulse", key), timeout=30)
    except requests.RequestException as exc:
        raise UsageError(f"cannot reach the live view at {base}: {type(exc).__name__}") from None
    if r.status_code != 200:
        raise UsageError(f"the live view at {base} answered HTTP {r.status_code} to this key")
    listed: list[dict[str, Any]] = r.json()
    return listed


def take(page: Any, url: str, out: Path, timeout: float) -> str:
    """Open ``url``, wait until it has drawn, save a full-page PNG; returns the page's state."""
    page.goto(url)
    page.wait_for_function(READY, timeout=timeout * 1000)
    page.wait_for_timeout(300)  # plotly's last transition frame
    page.screenshot(path=str(out), full_page=True)
    state: str = page.evaluate("document.body.dataset.state")
    return state


def snapshot(
    base: str,
    key: str,
    out: Path,
    variables: dict[str, str],
    range_: str | None = None,
    uids: Sequence[str] = (),
    chromium: str | None = None,
    width: int = 1600,
    timeout: float = 60.0,
) -> list[tuple[Path, str]]:
    """(PNG written, page state) for every dashboard the live view lists (or those of ``uids``)."""
    listed = [d["uid"] for d in dashboards(base, key)]
    unknown = sorted(set(uids) - set(listed))
    if unknown:
        raise UsageError(f"--uid: the live view has no dashboard {unknown[0]!r}")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with browser_context(find_chromium(chromium), key, width) as context:
        page = context.new_page()
        for uid in uids or listed:
            path = out / f"{uid}.png"
            written.append((path, take(page, dashboard_url(base, uid, variables, range_), path, timeout)))
    return written
