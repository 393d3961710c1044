"""``gateway.enforce``: each PromQL construct gets the tenant, another tenant is refused, the printed text is
what Prometheus's own parser (promtool) reads, and hostile values are never reflected in errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tenantpulse.gateway.enforce import (
    MAX_DEPTH,
    MAX_OPERATORS,
    BadQuery,
    Forbidden,
    enforce,
    enforce_match,
    tenant_selector,
)
from tests.support.prometheus import require

T = 't1"'  # a tenant id that needs quoting: whatever the keys file says, it stays one literal
Q = 'tenant="t1\\""'  # how the gateway writes it

REWRITES: list[tuple[str, str]] = [
    ("up", f"up{{{Q}}}"),
    ("up{}", f"up{{{Q}}}"),
    ('{__name__=~".+"}', f'{{{Q},__name__=~".+"}}'),
    ('{__name__!=""}', f'{{{Q},__name__!=""}}'),
    ('x{a="1",b!="2",c=~"3",d!~"4"}', f'x{{{Q},a="1",b!="2",c=~"3",d!~"4"}}'),
    ('x{tenant="t1\\""}', f"x{{{Q}}}"),  # the caller's own tenant, kept once
    ("x{tenant='t1\"'}", f"x{{{Q}}}"),  # single quotes
    ('x{tenant="\\x74\\x31\\""}', f"x{{{Q}}}"),  # escapes: the parsed value is compared
    ('x{"tenant"="t1\\""}', f"x{{{Q}}}"),  # quoted label name
    ('x{tenant="t1\\"",tenant="t1\\""}', f"x{{{Q}}}"),
    ("rate(x[5m])", f"rate(x{{{Q}}}[5m])"),
    ("rate(x[1h30m])", f"rate(x{{{Q}}}[1h30m])"),
    ("rate(x[90s])", f"rate(x{{{Q}}}[1m30s])"),
    ("rate(x[500ms])", f"rate(x{{{Q}}}[500ms])"),
    ("x offset 5m", f"x{{{Q}}} offset 5m"),
    ("x offset -5m", f"x{{{Q}}} offset -5m"),
    ("x @ 100", f"x{{{Q}}} @ 100.000"),
    ("x @ 100.5", f"x{{{Q}}} @ 100.500"),
    ("x @ start()", f"x{{{Q}}} @ start()"),
    ("rate(x[5m] offset 1w @ end())", f"rate(x{{{Q}}}[5m] @ end() offset 7d)"),
    ("x[5m:1m]", f"x{{{Q}}}[5m:1m]"),
    ("x[5m:]", f"x{{{Q}}}[5m:]"),  # the binding's own printer loses the colon
    ("max_over_time(rate(x[1m])[1h:5m] offset 1m)", f"max_over_time(rate(x{{{Q}}}[1m])[1h:5m] offset 1m)"),
    ("x offset 1m [5m:1m]", f"(x{{{Q}}} offset 1m)[5m:1m]"),
    ("min_over_time((a + b)[5m:])", f"min_over_time((a{{{Q}}} + b{{{Q}}})[5m:])"),
    ("sum(x)", f"sum(x{{{Q}}})"),
    ("sum by (a, b) (x)", f"sum by (a, b) (x{{{Q}}})"),
    ("sum(x) by (a)", f"sum by (a) (x{{{Q}}})"),
    ("sum without (tenant) (x)", f"sum without (tenant) (x{{{Q}}})"),
    ("topk(3, x)", f"topk(3, x{{{Q}}})"),
    ("topk(scalar(y), x)", f"topk(scalar(y{{{Q}}}), x{{{Q}}})"),  # a parameter is an expression too
    ('count_values("v", x)', f'count_values("v", x{{{Q}}})'),
    ("quantile(0.5, x)", f"quantile(0.5, x{{{Q}}})"),
    ("a + b", f"a{{{Q}}} + b{{{Q}}}"),
    ("a > bool 1", f"a{{{Q}}} > bool 1"),
    ("a and on () b", f"a{{{Q}}} and on () b{{{Q}}}"),
    ("a or b", f"a{{{Q}}} or b{{{Q}}}"),
    ("a unless ignoring (c) b", f"a{{{Q}}} unless ignoring (c) b{{{Q}}}"),
    ("a * on (x) group_left (y) b", f"a{{{Q}}} * on (x) group_left (y) b{{{Q}}}"),
    ("a / ignoring (x) group_right b", f"a{{{Q}}} / ignoring (x) group_right () b{{{Q}}}"),
    ("a atan2 b", f"a{{{Q}}} atan2 b{{{Q}}}"),
    ("(a + b) * c", f"(a{{{Q}}} + b{{{Q}}}) * c{{{Q}}}"),
    ("-x", f"-x{{{Q}}}"),
    ("- -x", f"-(-x{{{Q}}})"),
    ("-2 ^ 2", "-2 ^ 2"),
    ("0x1f + 1e3 + Inf - NaN", "31 + 1000 + Inf - NaN"),
    ("1.5", "1.5"),
    ('"a string"', '"a string"'),
    ("time()", "time()"),
    ("vector(1)", "vector(1)"),
    ("day_of_month()", "day_of_month()"),
    ('absent(nope{job="x"})', f'absent(nope{{{Q},job="x"}})'),
    (
        'label_replace(x, "dst", "$1", "tenant", "(.*)")',
        f'label_replace(x{{{Q}}}, "dst", "$1", "tenant", "(.*)")',
    ),
    ('label_join(x, "dst", ",", "a", "b")', f'label_join(x{{{Q}}}, "dst", ",", "a", "b")'),
    (
        "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))",
        f"histogram_quantile(0.9, sum by (le) (rate(x_bucket{{{Q}}}[5m])))",
    ),
    (
        'x{a="q\\"uote", b="back\\\\slash", c="new\\nline"}',
        f'x{{{Q},a="q\\"uote",b="back\\\\slash",c="new\\nline"}}',
    ),
    ('x{a="}{tenant=~\\".+\\"}"}', f'x{{{Q},a="}}{{tenant=~\\".+\\"}}"}}'),  # a value, not syntax
    ('{"metric.name"}', f'{{{Q},__name__="metric.name"}}'),
    ('x{"a.b"="1"}', f'x{{{Q},"a.b"="1"}}'),
    ('sum{a="1"}', f'{{{Q},__name__="sum",a="1"}}'),  # a keyword as metric name is never printed bare
    ('{a="1" or b="2"}', f'{{{Q},a="1" or {Q},b="2"}}'),  # every alternative
    ('x{a="1", b="2" or c="3"}', f'x{{{Q},a="1",b="2" or {Q},c="3"}}'),
    ("x # a comment", f"x{{{Q}}}"),
]


@pytest.mark.parametrize(("query", "expected"), REWRITES, ids=[q for q, _ in REWRITES])
def test_every_selector_gets_the_tenant(query: str, expected: str) -> None:
    assert enforce(query, T) == expected
    assert enforce(expected, T) == expected  # idempotent: a rewritten query passes as it is


FORBIDDEN: list[tuple[str, str]] = [
    ('x{tenant="t2"}', "selector 1 (vector selector x) has the matcher tenant=..."),
    ('x{tenant=~".*"}', "tenant=~..."),
    ('x{tenant!="t1\\""}', "tenant!=..."),
    ('x{tenant!~"t2"}', "tenant!~..."),
    ('x{tenant=~"t1\\""}', "tenant=~..."),  # means the same, still not exactly tenant="T"
    ('x{tenant=""}', "tenant=..."),
    ('x{tenant="t1\\"", tenant="t2"}', "tenant=..."),
    ('x{"tenant"="t2"}', "tenant=..."),
    ('a + rate(b{tenant="t2"}[5m])', "selector 2 (matrix selector b)"),
    (
        'sum(a) / on () group_left max_over_time(c{tenant=~"t.*"}[5m:1m] offset 1h)',
        "selector 2 (vector selector c)",
    ),
    ('{a="1" or tenant="t2"}', "selector 1 (vector selector)"),
    ('{__name__="x", tenant="t1\\"" or tenant="t2"}', "selector 1 (vector selector)"),
    ('label_replace(x, "tenant", "t2", "", "")', "label_replace() may not write the tenant label"),
    ('label_join(x, "tenant", ",", "a")', "label_join() may not write the tenant label"),
    ('count_values("tenant", x)', "count_values() may not write the tenant label"),
    ('info(x, {k=~".+"})', "info() reads series the query does not name"),
]


@pytest.mark.parametrize(("query", "message"), FORBIDDEN, ids=[q for q, _ in FORBIDDEN])
def test_another_tenant_is_refused_not_replaced(query: str, message: str) -> None:
    with pytest.raises(Forbidden) as refused:
        enforce(query, T)
    assert message in refused.value.message
    assert refused.value.status == 403 and refused.value.error_type == "forbidden"


def test_the_refusal_names_the_selector_but_never_the_value() -> None:
    hostile = "acme-secret-" + "x" * 500
    for query in (
        f'x{{tenant="{hostile}"}}',
        f'rate(y[5m]) + x{{tenant=~"{hostile}"}}',
        f'{{__name__="x", tenant!="{hostile}"}}',
    ):
        with pytest.raises(Forbidden) as refused:
            enforce(query, "t1")
        assert "acme-secret" not in refused.value.message and len(refused.value.message) < 200
    long_name = "m" * 500  # a metric name is named only when short
    with pytest.raises(Forbidden) as refused:
        enforce(f'{long_name}{{tenant="t2"}}', "t1")
    assert long_name not in refused.value.message


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("x{", "query: "),
        ('{a=~".*"}', "non-empty matcher"),  # as Prometheus refuses it
        ("", "query: "),
        ("sum(", "query: "),
        ("x @ -100", "negative @"),
        ("x @ 1e12", "@ timestamp is out of the range"),
        (
            "x{a=`raw\\y`}",
            "query: ",
        ),  # a Go raw string the Rust parser reads differently: refused, not guessed
        ("(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1), "nested"),
        ("+".join(["x"] * (MAX_OPERATORS + 2)), "operators"),
        ("+".join(["x"] * 6000), "operators"),  # beyond ~5,000 the parser overflows its stack: never reached
        ("-" * 5000 + "x", "operators"),
    ],
)
def test_bad_queries(query: str, message: str) -> None:
    with pytest.raises(BadQuery) as bad:
        enforce(query, "t1")
    assert message in bad.value.message
    assert bad.value.status == 400 and bad.value.error_type == "bad_data"


def test_the_worst_queries_inside_the_limits_are_served() -> None:
    """The cost guard refuses one past each limit (above) and lets the worst query at it through, rewritten
    (no time is asserted: timings belong to ``benchmarks/``, not to tests on a shared machine)."""
    worst = [
        "sum(" * (MAX_DEPTH - 1) + "x" + ")" * (MAX_DEPTH - 1),
        " or ".join(['x{a="1"}'] * MAX_OPERATORS),
        "x{" + " or ".join(['a="1"'] * 1500) + "}",
    ]
    for query in worst:
        assert 'tenant="t1"' in enforce(query, "t1"), query[:40]


def test_match_selectors() -> None:
    assert enforce_match("up", "t1") == 'up{tenant="t1"}'
    assert enforce_match('{__name__=~".+"}', "t1") == '{tenant="t1",__name__=~".+"}'
    assert enforce_match(tenant_selector("t1"), "t1") == '{tenant="t1"}'
    for bad in ("rate(x[5m])", "x offset 1m", "x @ 10", "sum(x)", "x[5m]", "1"):
        with pytest.raises(BadQuery, match=r"match\[\] 3 must be a series selector"):
            enforce_match(bad, "t1", 3)
    with pytest.raises(Forbidden, match=r"match\[\] 2 has the matcher tenant=~"):
        enforce_match('{tenant=~".+"}', "t1", 2)


def test_every_rewrite_parses_in_prometheus(tmp_path: Path) -> None:
    """The text the gateway sends is read by Prometheus's own parser (promtool), not only by the Rust one."""
    promtool = require("promtool")
    queries = [enforce(q, T) for q, _ in REWRITES if " or " not in q or "{" not in q]
    queries = [q for q in queries if '"a.b"' not in q and "metric.name" not in q]  # UTF-8 names: Prometheus 3
    rules = [{"record": f"r{i}", "expr": q} for i, q in enumerate(queries)]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "gateway", "rules": rules}]}))
    out = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rules)} rules found" in out.stdout


def test_parse_errors_keep_the_callers_text_out() -> None:
    marker = "ECHO-7f3a-" + "z" * 80
    for query in (f'x{{a=~"({marker}"}}', f"{marker}(x)", f'x{{a="{marker}"', f'"{marker}'):
        with pytest.raises(BadQuery) as bad:
            enforce(query, "t1")
        assert "ECHO-7f3a" not in bad.value.message and bad.value.message.startswith("query: ")
    with pytest.raises(BadQuery, match="unknown function with name 'foo'"):
        enforce("foo(x)", "t1")  # a short name is what the caller needs to find the mistake
