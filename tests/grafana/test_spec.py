"""Grid packing (property-tested) and the spec's refusals, which must name component, field and choices."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tenantpulse.cli
from tenantpulse.cli import main
from tenantpulse.conventions import catalog as c
from tenantpulse.grafana import layout
from tenantpulse.grafana import spec as s
from tenantpulse.grafana.custom import create_custom_dashboard
from tenantpulse.grafana.realtime import create_realtime_dashboard
from tenantpulse.kernel.errors import SpecError, UsageError

sizes = st.lists(st.tuples(st.integers(1, 24), st.integers(1, 12)), min_size=1, max_size=40)


@pytest.fixture(autouse=True)
def only_dashboard_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real CLI with just this part's subcommands, so other parts' work in progress cannot break it."""
    assert "tenantpulse.grafana.cli" in tenantpulse.cli.COMMAND_MODULES
    monkeypatch.setattr(tenantpulse.cli, "COMMAND_MODULES", ("tenantpulse.grafana.cli",))


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


@settings(max_examples=200, deadline=None)
@given(sizes, st.sampled_from(layout.LAYOUTS))
def test_packing_never_overlaps_and_stays_on_the_grid(items: list[tuple[int, int]], how: str) -> None:
    placed = layout.pack(items, how)  # type: ignore[arg-type]
    boxes = [(x, y, w, h) for (x, y), (w, h) in zip(placed, items, strict=True)]
    for x, y, w, _ in boxes:
        assert x >= 0 and x + w <= layout.GRID_WIDTH and y >= 0
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not _overlap(a, b), (a, b)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 24), st.integers(1, 12)), min_size=1, max_size=15))
def test_custom_dashboards_with_random_sizes_never_overlap(items: list[tuple[int, int]]) -> None:
    comps = [{"type": "kpi", "indicator": "active_users", "width": w, "height": h} for w, h in items]
    panels = create_custom_dashboard("Random", components=comps).panels
    boxes = [(p.gridPos.x, p.gridPos.y, p.gridPos.w, p.gridPos.h) for p in panels]
    assert [(b[2], b[3]) for b in boxes] == items
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not _overlap(a, b)


def test_grid_fills_beside_a_tall_panel_and_stack_does_not() -> None:
    items = [(12, 8), (6, 4), (6, 4), (6, 4)]
    assert layout.pack(items, "grid") == [(0, 0), (12, 0), (18, 0), (12, 4)]
    assert layout.pack(items, "stack") == [(0, 0), (0, 8), (0, 12), (0, 16)]


def _refusal(component: dict, dashboard: str = "Ops") -> SpecError:
    with pytest.raises(SpecError) as info:
        create_custom_dashboard(
            dashboard, components=[{"type": "kpi", "indicator": "active_users"}, component]
        )
    return info.value


@pytest.mark.parametrize(
    ("component", "field", "hint"),
    [
        ({"type": "pie", "indicator": "active_users"}, "type", "chart, kpi, gauge"),
        ({"type": "kpi", "indicator": "nope"}, "indicator", "request_rate"),
        ({"type": "chart", "indicators": ["request_rate", "nope"]}, "indicators", "p95_latency"),
        ({"type": "chart", "metric": "tenantpulse_nope"}, "metric", c.EVENTS.name),
        ({"type": "heatmap", "metric": c.REVENUE.name}, "metric", c.EVENT_DURATION.name),
        ({"type": "kpi", "indicator": "active_users", "width": 30}, "width", "1 to 24"),
        ({"type": "kpi", "indicator": "active_users", "colour": "red"}, "colour", "quantile"),
        ({"type": "kpi", "indicators": ["active_users", "error_rate"]}, "indicator", "exactly one"),
        ({"type": "kpi", "metric": c.EVENTS.name, "labels": {"region": "eu"}}, "labels", c.EVENT_TYPE),
        ({"type": "anomaly", "metric": c.EVENTS.name}, "indicator", "exactly one indicator"),
        ({"type": "chart"}, "indicators", "indicators or metric"),
        ({"type": "kpi", "indicator": "active_users", "quantile": 2}, "quantile", "between 0 and 1"),
    ],
)
def test_bad_component_names_component_field_and_choices(component: dict, field: str, hint: str) -> None:
    err = _refusal({**component, "title": "Broken"})
    assert (err.source, err.item, err.field) == (
        "dashboard 'Ops', component 'Broken'",
        "Ops",
        f"components[1].{field}",
    )
    assert hint in err.reason
    assert str(err).startswith(f"dashboard 'Ops', component 'Broken': field 'components[1].{field}': ")
    assert "\n" not in str(err)
    assert isinstance(err, UsageError)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "dashboards"),
        ({"dashboards": [{"name": "x", "layout": "masonry", "components": [{"type": "score"}]}]}, "layout"),
        ({"dashboards": [{"name": "x", "components": []}]}, "components"),
        ({"dashboards": [{"components": [{"type": "score"}]}]}, "name"),
        ({"realtime": [{"widgets": ["sales"]}]}, "widgets"),
        ({"realtime": [{"tenant": "bad tenant!"}]}, "tenant"),
        ({"realtime": [{}], "grafana": {"prometheus": "x"}}, "grafana.prometheus"),
        ({"realtime": [{}], "extra": 1}, "extra"),
        ({"dashboards": [{"name": "x", "uid": "no spaces", "components": [{"type": "score"}]}]}, "uid"),
    ],
)
def test_bad_spec_names_the_field(data: dict, field: str) -> None:
    with pytest.raises(SpecError) as info:
        s.parse(data)
    assert info.value.field == field


def test_unknown_widget_and_bad_tenant_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="valid: system_health"):
        create_realtime_dashboard("t1", widgets=["sales"])
    with pytest.raises(UsageError, match="not a valid tenant id"):
        create_realtime_dashboard('t1"}) or vector(1')


def test_long_names_keep_distinct_uids() -> None:
    a = create_custom_dashboard(
        "A very long dashboard name for the streaming team one", components=[{"type": "score"}]
    )
    b = create_custom_dashboard(
        "A very long dashboard name for the streaming team two", components=[{"type": "score"}]
    )
    assert a.uid != b.uid and len(a.uid) <= 40 and len(b.uid) <= 40


def test_cli_prints_spec_error_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "dashboards:\n  - name: Ops\n    components:\n      - {type: kpi, title: Plays, indicator: plays}\n"
    )
    assert main(["generate", "dashboards", "--spec", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    where = f"error: {spec}: dashboard 'Ops', component 'Plays': field 'components[0].indicator': "
    assert where + "unknown indicator 'plays'; valid: " in err and "plays_per_minute" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cli_refuses_invalid_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("dashboards: [unclosed\n")
    assert main(["generate", "dashboards", "--spec", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_cli_generates_the_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "dashboards.yaml"
    assert main(["generate", "dashboards", "--spec", str(example), "--out", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert len(list((tmp_path / "dashboards").glob("*.json"))) >= 4


def test_the_spec_names_exactly_the_widgets_the_generator_builds() -> None:
    from tenantpulse.grafana import realtime
    from tenantpulse.grafana import spec as grafana_spec

    assert tuple(realtime.WIDGETS) == grafana_spec.WIDGETS
