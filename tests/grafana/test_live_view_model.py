"""The live view's reading of the generated dashboards and its shaping of Prometheus answers, without a
browser: every generated panel is understood, heatmap buckets and tables come out as Grafana makes them,
and the work is bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantpulse.cli import main
from tenantpulse.grafana.live import frames, model
from tenantpulse.grafana.live.evaluate import Limits, builtins, window
from tenantpulse.grafana.live.model import Panel, Target
from tenantpulse.grafana.live.variables import substitute
from tests.grafana.test_live import dashboards_under_test


def test_every_generated_panel_is_one_the_live_view_draws() -> None:
    boards = {uid: model.read(data) for uid, data in dashboards_under_test().items()}
    assert len(boards) >= 7
    for board in boards.values():
        assert board.panels and board.range_seconds > 0
        assert {v.name for v in board.variables} >= {"tenant"}
        for panel in board.panels:
            assert panel.type in model.PANEL_TYPES, (board.uid, panel.view["title"])
            grid = panel.view["grid"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] >= 1
            if panel.type not in ("row", "text"):
                assert panel.targets, (board.uid, panel.view["title"])
    kinds = {p.type for b in boards.values() for p in b.panels}
    assert kinds >= {"row", "timeseries", "stat", "gauge", "table", "heatmap"}
    tables = [p for b in boards.values() for p in b.panels if p.type == "table"]
    assert all(t.instant for p in tables for t in p.targets)


def test_heatmap_buckets_are_counts_per_bucket() -> None:
    def bucket(le: str, values: list[float]) -> dict[str, object]:
        return {"labels": {"le": le}, "t": [1000.0, 2000.0], "v": values}

    out = frames.heatmap([bucket("+Inf", [10, 12]), bucket("0.1", [2, 3]), bucket("1", [7, 3])])
    assert out["buckets"] == ["0.1", "1", "+Inf"]
    assert out["counts"] == [[2, 3], [5, 0], [3, 9]]  # never negative when a counter resets


def test_table_is_one_row_per_label_set_one_column_per_query() -> None:
    a, b = Target("A", "x", "rate", True, False), Target("B", "y", "ratio", True, False)
    row = {"labels": {"tenant": "t1", "__name__": "m"}, "t": [0.0], "v": [1.5]}
    out = frames.table([(a, [row]), (b, [{**row, "v": [0.25]}])])
    assert out == {"columns": ["tenant", "Value #A", "Value #B"], "labels": 1, "rows": [["t1", 1.5, 0.25]]}


def test_series_are_named_by_legend_format_and_bounded() -> None:
    target = Target("A", "x", "{{event_type}} events", False, False)
    data = {
        "result": [{"metric": {"event_type": f"e{i}"}, "values": [[1, "1"], [2, "NaN"]]} for i in range(5)]
    }
    panel = Panel(1, "timeseries", (target,), {})
    out = frames.frame(panel, [(target, data), (target, "HTTP 403: refused")], max_series=3)
    assert [s["name"] for s in out["series"]] == ["e0 events", "e1 events", "e2 events"]
    assert out["series"][0]["v"] == [1.0, None] and out["dropped"] == 2
    assert out["errors"] == ["A: HTTP 403: refused"]
    assert frames.legend("", {"__name__": "up", "job": "x"}) == 'up{job="x"}'


def test_range_and_points_are_bounded_and_builtins_follow_grafana() -> None:
    limits = Limits(max_points=100, scrape_interval=15.0)
    w = window(86400, limits, end=1_000_000.0)
    assert w.step == 864 and w.seconds == 86400 and (w.end - w.start) / w.step <= limits.max_points
    assert builtins(w, limits) == {
        "__interval": "14m24s",
        "__rate_interval": "14m39s",
        "__range": "1d",
        "__range_s": "86400",
    }
    assert builtins(window(600, limits, end=1e6), limits)["__rate_interval"] == "1m"
    assert substitute('x{tenant="$tenant",h="${horizon}"}[$__rate_interval] $other', {"tenant": "a", "horizon": "1h", "__rate_interval": "1m"}) == (
        'x{tenant="a",h="1h"}[1m] $other'
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prometheus-url", "ftp://p"], "--prometheus-url must be an http(s) URL"),
        (["--port", "0"], "--port must be 1-65535"),
        (["--max-points", "0"], "--max-points must be at least 1"),
        (["--scrape-interval", "soon"], "--scrape-interval"),
    ],
)
def test_serve_refuses_bad_options_in_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text("keys: []\n")
    base = ["dashboards", "serve", "--spec", "examples/dashboards.yaml", "--keys", str(keys)]
    defaults = {"--prometheus-url": "http://127.0.0.1:9090"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    flat = [x for k, v in {**defaults, **given}.items() for x in (k, v)]
    assert main([*base, *flat]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_snapshot_refuses_an_unreadable_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboards", "snapshot", "--key-file", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    assert "--key-file" in capsys.readouterr().err
