"""The live view in headless Chromium, against a real Prometheus fed by the real exporter and sidecar.

Every dashboard the examples generate (plus every realtime widget and every custom component) is
opened in one browser session: every panel must be drawn by plotly with data (counted in the DOM:
lines with points, numbers, table cells, heatmap cells), with no console error. An all-tenant key
switches tenants with the selector and the drawn values change; a tenant key's selector holds its own
tenant only, and asking for another is refused. The gateway's ``/dashboards`` route draws the same
way with a tenant key.
"""

from __future__ import annotations

import shutil
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn

from tenantpulse.cli import main
from tenantpulse.grafana.live import model
from tenantpulse.grafana.live.app import HttpReaders, create_live_app
from tenantpulse.grafana.live.evaluate import Limits
from tenantpulse.grafana.live.snapshot import browser_context
from tenantpulse.security.keys import KeyRing
from tests.grafana.test_live import TENANTS, dashboards_under_test, stack  # noqa: F401 - the fixture
from tests.support.gateway import Gateway
from tests.support.ports import free_port, wait_until
from tests.support.prometheus import Prometheus

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium")
# What plotly drew in one panel: lines with at least one point, indicator numbers, table cells,
# heatmap images. A panel counts as drawn with data when its sum is positive.
COUNT_DRAWN = """
(section) => {
  const plot = section.querySelector('.plot');
  if (!plot || !plot.data) return {traces: 0, values: 0};
  let values = 0;
  for (const t of plot.data) {
    if (t.type === 'indicator') values += (t.value === null || t.value === undefined) ? 0 : 1;
    else if (t.type === 'table') values += t.cells.values.flat().filter(v => v !== '' && v !== null).length;
    else if (t.type === 'heatmap') values += t.z.flat().filter(v => v !== null).length;
    else values += (t.y || []).filter(v => v !== null).length;
  }
  const drawn = plot.querySelectorAll(
    'g.scatterlayer path.js-line, g.indicatorlayer text.number, g.table .cell-text, g.heatmaplayer image'
  ).length;
  return {traces: plot.data.length, values: values, drawn: drawn};
}
"""


class LiveView:
    """The live view app in this process (so coverage sees it), served by uvicorn on a free port."""

    def __init__(self, prom: Prometheus, gateway: Gateway, keys_file: Path) -> None:
        ring = KeyRing.from_file(keys_file)
        self.boards = {data["uid"]: data for data in dashboards_under_test().values()}
        app = create_live_app(
            self.boards,
            lambda: ring,
            HttpReaders(prom.url, gateway.url),
            Limits(scrape_interval=1.0, max_points=120),
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveView:
        self.thread.start()
        wait_until(lambda: self._up(), timeout=20, what="the live view")
        return self

    def _up(self) -> bool:
        try:
            return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def data(self, key: str, uid: str, **params: str) -> requests.Response:
        return requests.get(
            f"{self.url}/api/dashboards/{uid}/data", params=params, auth=("viewer", key), timeout=60
        )


@pytest.fixture(scope="module")
def view(stack: tuple[Prometheus, Gateway, dict[str, str]]) -> Iterator[tuple[LiveView, dict[str, str]]]:  # noqa: F811
    prom, gateway, keys = stack
    keys_file = Path(gateway.child.command[gateway.child.command.index("--keys") + 1])
    with LiveView(prom, gateway, keys_file) as live:
        yield live, keys


def drawn_panels(page: Any) -> dict[str, dict[str, int]]:
    out = {}
    for section in page.query_selector_all("section.panel"):
        if section.get_attribute("data-type") in ("row", "text"):
            continue
        title = section.query_selector(".title").inner_text()
        out[f"{section.get_attribute('id')} {title}"] = section.evaluate(COUNT_DRAWN)
    return out


def fingerprint(page: Any) -> list[Any]:
    """Every value plotly holds, panel by panel: what a viewer sees, as numbers."""
    return page.evaluate(
        """() => [...document.querySelectorAll('section.panel .plot')].map(p => (p.data || []).map(
             t => t.type === 'indicator' ? t.value : t.type === 'table' ? t.cells.values : t.y || t.z))"""
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium; make system)")
def test_every_panel_of_every_dashboard_is_drawn_with_data_and_tenants_stay_apart(
    view: tuple[LiveView, dict[str, str]],
    stack: tuple[Prometheus, Gateway, dict[str, str]],  # noqa: F811
) -> None:
    live, keys = view
    assert CHROMIUM is not None
    errors: list[str] = []
    summary: dict[str, int] = {"dashboards": 0, "panels": 0, "traces": 0, "values": 0, "drawn": 0}
    with browser_context(CHROMIUM, keys["admin"]) as context:
        page = context.new_page()
        page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        for uid in sorted(live.boards):
            page.goto(f"{live.url}/d/{uid}?var-tenant={TENANTS[0]}&range=5m")
            page.wait_for_function("document.body.dataset.state === 'ready'", timeout=60_000)
            panels = drawn_panels(page)
            # Windows fill as scrapes arrive: redraw (as auto-refresh does) until every panel has data.
            wait_until(
                lambda p=page, u=uid: all(c["values"] and c["drawn"] for c in _redrawn(p).values()),
                timeout=40,
                what=f"every panel of {uid} drawn with data: {panels}",
            )
            panels = drawn_panels(page)
            summary["dashboards"] += 1
            summary["panels"] += len(panels)
            for counts in panels.values():
                for k in ("traces", "values", "drawn"):
                    summary[k] += counts[k]
        assert not errors, errors
        print("\nlive view drew:", summary)
        boards = [model.read(b) for b in live.boards.values()]
        expected = sum(1 for b in boards for p in b.panels if p.type not in ("row", "text"))
        assert summary["dashboards"] == len(live.boards) >= 6 and summary["panels"] == expected >= 80

        # The tenant selector (an all-tenant key) changes what is drawn, and only this tenant's.
        uid = "tp-realtime-all"
        page.goto(f"{live.url}/d/{uid}?var-tenant={TENANTS[0]}&range=5m")
        page.wait_for_function("document.body.dataset.state === 'ready'")
        options = page.eval_on_selector_all("#var-tenant option", "os => os.map(o => o.value)")
        assert set(TENANTS) <= set(options)
        first = fingerprint(page)
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if "/data?" in r.url else None)
        page.select_option("#var-tenant", TENANTS[1])
        page.wait_for_function(f"document.body.dataset.tenant === '{TENANTS[1]}'")
        assert asked and all(f"var-tenant={TENANTS[1]}" in u for u in asked), asked
        assert fingerprint(page) != first
        assert f"var-tenant={TENANTS[1]}" in page.url
        assert not errors, errors

    # A tenant key: its tenant is the only option, fixed; through the gateway's route as well.
    prom, gateway, _ = stack
    tenant_key = keys[f"{TENANTS[0]}:read"]
    with browser_context(CHROMIUM, tenant_key) as context:
        page = context.new_page()
        page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        for base in (live.url, f"{gateway.url}/dashboards"):
            page.goto(f"{base}/d/tp-realtime-all?range=5m")
            page.wait_for_function("document.body.dataset.state === 'ready'", timeout=60_000)
            assert page.eval_on_selector_all("#var-tenant option", "os => os.map(o => o.value)") == [
                TENANTS[0]
            ]
            assert page.is_disabled("#var-tenant")
            wait_until(
                lambda p=page: all(
                    c["values"] and c["drawn"] for k, c in _redrawn(p).items() if "host" not in k
                ),
                timeout=30,
                what=f"tenant panels drawn at {base}",
            )
        assert not errors, errors
        # Forcing another tenant through the URL draws nothing and says why.
        page.goto(f"{live.url}/d/tp-realtime-all?var-tenant={TENANTS[1]}")
        page.wait_for_function("document.body.dataset.state === 'error'")
        assert "var-tenant" in page.inner_text("#message")
        assert all(not c["traces"] for c in drawn_panels(page).values())


def _redrawn(page: Any) -> dict[str, dict[str, int]]:
    page.evaluate("draw()")
    page.wait_for_function("document.body.dataset.state === 'ready'")
    return drawn_panels(page)


def test_a_tenant_key_reads_its_own_tenant_only(view: tuple[LiveView, dict[str, str]]) -> None:
    live, keys = view
    key = keys[f"{TENANTS[0]}:read"]
    r = live.data(key, "tp-realtime-all", **{"var-tenant": TENANTS[1]})
    assert r.status_code == 403 and r.json()["field"] == "var-tenant", r.text
    r = live.data(key, "tp-realtime-all", range="5m")
    assert r.status_code == 200, r.text
    body = r.json()
    tenant = next(v for v in body["variables"] if v["name"] == "tenant")
    assert tenant["options"] == [TENANTS[0]] and tenant["fixed"]
    answered = [s for p in body["panels"].values() for s in p.get("series", [])]
    assert answered and not any(TENANTS[1] in s["name"] for s in answered)
    # The page text never names the other tenant either.
    page = requests.get(f"{live.url}/d/tp-realtime-all", auth=("v", key), timeout=30).text
    assert TENANTS[1] not in page


@pytest.mark.parametrize(
    ("params", "field", "status"),
    [
        ({"range": "forever"}, "range", 400),
        ({"range": "90d"}, "range", 400),
        ({"var-nope": "x"}, "var-nope", 400),
        ({"var-tenant": 'a"b'}, "var-tenant", 400),
        ({"var-tenant": "no-such-tenant"}, "var-tenant", 400),
        ({"colour": "red"}, "colour", 400),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(
    view: tuple[LiveView, dict[str, str]], params: dict[str, str], field: str, status: int
) -> None:
    live, keys = view
    r = live.data(keys["admin"], "tp-realtime-all", **params)
    assert r.status_code == status and r.json()["field"] == field, r.text


def test_keys_and_routes(view: tuple[LiveView, dict[str, str]]) -> None:
    live, keys = view
    r = requests.get(f"{live.url}/", timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    r = requests.get(f"{live.url}/", auth=("v", "wrong"), timeout=10)
    assert r.status_code == 401 and r.json()["field"] == "Authorization"
    r = requests.get(f"{live.url}/api/dashboards", auth=("v", keys[f"{TENANTS[0]}:write"]), timeout=10)
    assert r.status_code == 403 and r.json()["field"] == "Authorization"
    r = requests.get(f"{live.url}/d/nope", auth=("v", keys["admin"]), timeout=10)
    assert r.status_code == 404 and r.json()["field"] == "uid"
    listed = requests.get(
        f"{live.url}/api/dashboards", headers={"Authorization": f"Bearer {keys['admin']}"}, timeout=10
    )
    assert {d["uid"] for d in listed.json()} == set(live.boards)
    index = requests.get(f"{live.url}/", auth=("v", keys["admin"]), timeout=10).text
    assert all(f"/d/{uid}" in index for uid in live.boards)
    plotly = requests.get(f"{live.url}/static/plotly.min.js", timeout=10)
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000  # the wheel's own copy
    assert requests.get(f"{live.url}/static/nope.js", timeout=10).status_code == 404
    model = requests.get(f"{live.url}/api/dashboards/tp-realtime-all", auth=("v", keys["admin"]), timeout=10)
    assert {p["type"] for p in model.json()["panels"]} >= {"row", "stat", "timeseries", "heatmap", "gauge"}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium; make system)")
def test_snapshot_writes_a_png_per_dashboard(view: tuple[LiveView, dict[str, str]], tmp_path: Path) -> None:
    live, keys = view
    key_file = tmp_path / "key"
    key_file.write_text(keys["admin"] + "\n")
    uids = ["tp-realtime-all", "tp-custom-reliability"]
    args = [
        "dashboards",
        "snapshot",
        "--url",
        live.url,
        "--key-file",
        str(key_file),
        "--out",
        str(tmp_path / "png"),
    ]
    code = main([*args, "--tenant", TENANTS[0], "--range", "5m", *(a for u in uids for a in ("--uid", u))])
    assert code == 0
    for uid in uids:
        png = (tmp_path / "png" / f"{uid}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png[16:24])
        assert width == 1600 and height > 900  # the whole page, below the fold too
    assert main([*args, "--uid", "nope"]) == 2
