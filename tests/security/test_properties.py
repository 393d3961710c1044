"""Property tests: whatever a user (or an attacker through the API) feeds the spec loaders and the alert
condition language, the only possible failure is the documented one (``SpecError`` / ``UsageError`` /
``ConditionError``) with a message — never a ``KeyError``, ``TypeError`` or the like that would surface as
a traceback or a 500. Inputs are arbitrary JSON/YAML values and text, plus values built from the specs'
own vocabulary so generation reaches past the first type check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from tenantpulse.alert_rules import spec as alert_spec
from tenantpulse.alert_rules.conditions import OPS, ConditionError, parse_condition
from tenantpulse.conventions import indicators
from tenantpulse.exporters.settings import load_pseudonym_keys
from tenantpulse.grafana import spec as dash_spec
from tenantpulse.kernel.errors import SpecError, UsageError
from tenantpulse.security.keys import KeyRing

SETTINGS = settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))

INDICATOR_NAMES = sorted(indicators.INDICATORS)
VOCABULARY = [
    # alert specs
    "defaults", "channels", "actions", "routing", "alerts", "ml_alerts", "slos", "name", "condition", "for",
    "severity", "window", "runbook_base", "runbook_url", "tenants", "labels", "annotations", "model",
    "indicator", "objective", "slack", "email", "api_url_file", "to", "smarthost", "test_inputs",
    # dashboard specs
    "grafana", "realtime", "dashboards", "slo_spec", "layout", "components", "type", "title",
    "indicators", "width", "height", "url", "kpi", "chart", "anomaly", "grid", "critical", "warning",
    *INDICATOR_NAMES,
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(VOCABULARY),
    st.sampled_from(["5m", "0s", "1h30m", "-1m", "error_rate > 0.05", "t1", "*", "../etc/passwd"]),
)
keys = st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=10))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)


@st.composite
def condition_texts(draw: st.DrawFn) -> str:
    """Mostly well-formed conditions with random damage: the parser's whole input space near its grammar."""

    def clause() -> str:
        name = draw(st.one_of(st.sampled_from(INDICATOR_NAMES), st.text(max_size=8)))
        window = draw(st.sampled_from(["", "[5m]", "[1h]", "[0s]", "[]", "[5x]", "[", "[1d2h]"]))
        op = draw(st.one_of(st.sampled_from(list(OPS)), st.sampled_from(["=", "=>", "~", "", "<>"])))
        num = draw(
            st.one_of(st.floats(allow_nan=True).map(repr), st.sampled_from(["", "1e400", ".", "-0", "x"]))
        )
        space = draw(st.sampled_from([" ", "", "  ", "\t"]))
        return f"{name}{window}{space}{op}{space}{num}"

    parts = [clause() for _ in range(draw(st.integers(1, 4)))]
    joins = [draw(st.sampled_from([" and ", " or ", " AND ", " Or ", "and", " "])) for _ in parts[1:]]
    text = parts[0] + "".join(j + p for j, p in zip(joins, parts[1:], strict=True))
    return draw(st.one_of(st.just(text), st.text(max_size=40)))


@SETTINGS
@given(condition_texts())
def test_condition_language_fails_only_with_condition_error(text: str) -> None:
    try:
        condition = parse_condition(text)
    except ConditionError as exc:
        assert str(exc)
        return
    # Accepted: every clause is a known indicator, a valid operator and a finite-or-explicit number,
    # and the PromQL names only catalog indicators.
    assert condition.groups and all(condition.groups)
    for clause in condition.clauses:
        assert clause.indicator in indicators.INDICATORS and clause.op in OPS
    assert isinstance(condition.promql(["t1"]), str)


@SETTINGS
@given(
    st.lists(
        st.tuples(st.sampled_from(INDICATOR_NAMES), st.sampled_from([">", ">=", "<", "<="])),
        min_size=1,
        max_size=4,
    ),
    st.floats(0, 1e6),
)
def test_well_formed_conditions_parse(clauses: list[tuple[str, str]], threshold: float) -> None:
    text = " and ".join(f"{name} {op} {threshold!r}" for name, op in clauses)
    condition = parse_condition(text)
    assert [(c.indicator, c.op, c.threshold) for c in condition.clauses] == [
        (n, o, threshold) for n, o in clauses
    ]


@st.composite
def alert_specs(draw: st.DrawFn) -> Any:
    """A spec-shaped mapping whose parts are arbitrary values (often right, often wrong)."""
    alert = draw(st.dictionaries(st.sampled_from(VOCABULARY[:18]), values, max_size=6))
    if draw(st.booleans()):
        alert |= {"name": draw(st.text(min_size=1, max_size=12)), "condition": draw(condition_texts())}
    top = draw(st.dictionaries(st.sampled_from(VOCABULARY[:7]), values, max_size=3))
    return draw(
        st.one_of(
            values,
            st.just(top | {"alerts": [alert]}),
            st.just({"defaults": {"runbook_base": "x"}, "alerts": [alert]}),
        )
    )


@SETTINGS
@given(alert_specs())
def test_alert_spec_loader_fails_only_with_spec_error(data: Any) -> None:
    try:
        alert_spec.parse_spec(data)
    except SpecError as exc:
        assert str(exc)


@st.composite
def dashboard_specs(draw: st.DrawFn) -> Any:
    component = draw(st.dictionaries(st.sampled_from(VOCABULARY[30:]), values, max_size=5))
    board = draw(
        st.dictionaries(st.sampled_from(["name", "layout", "components", "title"]), values, max_size=3)
    )
    board["components"] = [component]
    return draw(st.one_of(values, st.just({"dashboards": [board]}), st.just(board)))


@SETTINGS
@given(dashboard_specs())
def test_dashboard_spec_loaders_fail_only_with_spec_error(data: Any) -> None:
    for parse in (dash_spec.parse, dash_spec.custom_dashboard):
        try:
            parse(data)
        except SpecError as exc:
            assert str(exc)


FILE_LOADERS = [alert_spec.load_spec, dash_spec.load, KeyRing.from_file, load_pseudonym_keys]


@pytest.mark.parametrize("loader", FILE_LOADERS, ids=["alerts", "dashboards", "api-keys", "pseudonym-keys"])
@settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_spec_files_with_any_bytes_fail_only_with_usage_errors(
    loader: Any, raw: bytes, tmp_path_factory: Any
) -> None:
    path = tmp_path_factory.mktemp("spec") / "spec.yaml"
    path.write_bytes(raw)
    try:
        loader(Path(path))
    except UsageError as exc:  # SpecError is a UsageError: the CLI prints them and exits 2
        assert str(exc)


@SETTINGS
@given(
    data=st.one_of(
        values,
        st.lists(
            st.dictionaries(
                st.sampled_from(["key", "key_sha256", "tenant", "scopes", "id", "expires"]),
                values,
                max_size=6,
            ),
            max_size=3,
        ).map(lambda k: {"keys": k}),
    )
)
@example(data={"keys": [{"key": "k", "tenant": "t1", "scopes": [["read"]]}]})  # once a TypeError
@example(data={"keys": {"v1": ["not", "a", "secret"]}, "current": {"a": 1}})
def test_keys_and_pseudonym_files_fail_only_with_usage_errors(data: Any, tmp_path_factory: Any) -> None:
    path = tmp_path_factory.mktemp("keys") / "keys.yaml"
    path.write_text(yaml.safe_dump(data))
    for loader in (KeyRing.from_file, load_pseudonym_keys):
        try:
            loader(path)
        except UsageError as exc:
            assert str(exc)


def test_vocabulary_reaches_accepting_inputs() -> None:
    """Guard against a vacuous property: the generators do produce specs the loaders accept."""
    accepted = {"alerts": 0, "dashboards": 0}

    @settings(max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(INDICATOR_NAMES), st.sampled_from([">", "<"]), st.floats(0, 10))
    def run(name: str, op: str, threshold: float) -> None:
        assume(threshold > 0)
        spec = {
            "defaults": {"runbook_base": "https://rb"},
            "alerts": [{"name": "A", "condition": f"{name} {op} {threshold}", "severity": "warning"}],
        }
        alert_spec.parse_spec(spec)
        accepted["alerts"] += 1
        dash_spec.custom_dashboard({"name": "D", "components": [{"type": "kpi", "indicator": name}]})
        accepted["dashboards"] += 1

    run()
    assert accepted["alerts"] > 0 and accepted["dashboards"] > 0
