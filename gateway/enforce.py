"""Tenant enforcement on PromQL: a query of tenant T reads only series carrying ``tenant="T"``.

``enforce(query, T)`` returns the query as it is sent to the backend; ``enforce_match(match, T)`` the
same for one ``match[]`` series selector. Both are pure functions and raise ``Forbidden`` (403) or
``BadQuery`` (400). Admin keys and ``tenant: "*"`` keys are not rewritten (``gateway.app``).

What is enforced, for tenant T:

1. **Every selector carries ``tenant="T"``.** Every vector selector of the expression, wherever it is
   (function arguments, aggregations and their parameters, both sides of binary operations, subqueries,
   matrix selectors, under ``@`` and ``offset``), is printed with the matcher ``tenant="T"``. In the
   ``{a="1" or b="2"}`` form each alternative gets it, since each alternative selects on its own. All
   data PromQL reads comes through selectors, so the answer is computed from T's series only; series
   without a tenant label (``up``, host metrics) are invisible to tenant keys.
2. **A query that names a tenant names T, exactly.** A tenant matcher other than ``tenant="T"``
   (``tenant="U"``, ``tenant=~".*"``, ``tenant!="U"``, ``tenant=~"T"``, ``tenant=""``), in a selector or
   in any alternative, is refused, not replaced: a rewritten ``tenant="U"`` query would answer a question
   about U with T's numbers, and the client would never learn its query was wrong; a refusal says so
   and is counted (``tenantpulse_gateway_refusals_total``). How T is written does not matter (``'T'``,
   ``"\\x54"``, a quoted ``"tenant"`` label name): the parsed value is compared.
3. **No forged tenant labels.** ``label_replace``/``label_join`` with ``tenant`` as destination and
   ``count_values("tenant", ...)`` are refused: not a leak (the values are T's) but an answer that
   carries another tenant's name, which a panel or alert would then attribute to that tenant. With
   this, every series of every answer has ``tenant="T"`` or no tenant label at all.
4. **No implicit reads.** ``info()`` is refused: it reads info series the query does not name, so there
   is no selector to carry the tenant.
5. **``match[]``** (``/series``, ``/labels``, ``/label/<name>/values``) must be a series selector without
   modifiers; rules 1 and 2 apply to it.

How. The query is parsed by ``promql-parser`` (the GreptimeTeam Rust parser; no PromQL parsing here),
and this module prints the tree back itself: the binding's own printer does not escape label values
(``{a="x\\"y"}`` prints as ``{a="x"y"}``, a value turned into syntax) and prints ``x[5m:]`` as
``x[5m]``. Every string literal is printed by ``conventions.promql.promql_string``. The printed text
is then parsed again and must be the input's tree with the tenant added (parentheses aside) and
carry exactly ``tenant="T"`` in every selector, or the query is refused: the text sent is the text
checked. What the backend executes is that printed text, never the client's, so a construct the
Rust and Go parsers would read differently cannot carry an unchecked selector past this module.

Bounded. Before parsing, one lexical pass refuses queries nested deeper than ``MAX_DEPTH`` or with
more than ``MAX_OPERATORS`` operators and calls: the parser's time grows with the square of nesting
(1,000 levels: 0.1 s; 5,000: 8 s, holding the GIL) and a chain of ~5,000 operators overflows its stack
and kills the process. It also refuses negative ``@`` timestamps, on which the binding panics.

Error messages name the selector by its position in the query (1-based, in reading order), its kind
(vector or matrix selector, ``match[] N``), its metric name when that is a plain identifier, and the
operator of the offending matcher (``tenant=~``), never the matcher's value: position, kind and
operator are enough to find and fix the selector, while the value is whatever the caller chose to
send (another tenant's id, a regex probing for ids, kilobytes of text), which would otherwise be
reflected into error bodies, Grafana panels and logs. Parse errors are the parser's message (needed to
fix the query) with no more of the caller's text than a function name or one character: regexes and
other quoted fragments are left out, and the message is cut to ``MAX_ERROR_TEXT`` characters.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import promql_parser as pp

from tenantpulse.conventions.catalog import TENANT
from tenantpulse.conventions.promql import promql_string

MAX_DEPTH = 64  # nesting of (), [] and {} outside string literals
MAX_OPERATORS = 128  # operators and opening parentheses (calls, groups) outside braces and strings
MAX_ERROR_TEXT = 200

_LABEL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_METRIC_RE = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$")
# Words the Go lexer reads as keywords, numbers or modifiers where a metric name could stand: such a
# name is printed as a ``__name__`` matcher, never bare.
_KEYWORDS = frozenset(
    {"and", "or", "unless", "atan2", "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar"}
    | {"topk", "bottomk", "count_values", "quantile", "limitk", "limit_ratio", "offset", "by", "without"}
    | {"on", "ignoring", "group_left", "group_right", "bool", "start", "end", "step", "inf", "nan"}
    | {"smoothed", "anchored", "fill", "fill_left", "fill_right"}
)
_MATCH_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}
_LABEL_WRITERS = {"label_replace": 1, "label_join": 1}  # function -> index of its destination label
_REFUSED_FUNCTIONS = {"info": "info() reads series the query does not name"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_OPERATOR_TOKEN = re.compile(r"[-+*/%^<>=!]|\(|\b(?:and|or|unless|atan2)\b")  # each sign counts
_NEGATIVE_AT = re.compile(r"@\s*-")


class EnforceError(Exception):
    """A query the gateway does not send; ``status`` and ``error_type`` are the HTTP answer's."""

    status = 400
    error_type = "bad_data"
    reason = "bad_query"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadQuery(EnforceError):
    """Not a query the gateway can check: unparsable, too complex, an unsupported construct (400)."""


class Forbidden(EnforceError):
    """A query that would read, or claim, another tenant's series (403)."""

    status = 403
    error_type = "forbidden"
    reason = "forbidden_query"


def enforce(query: str, tenant: str) -> str:
    """``query`` with every selector restricted to ``tenant``, as PromQL text for the backend."""
    expr = _parse(query, "query")
    text = _Printer(tenant).expr(expr)
    _verify(text, expr, tenant, "query")
    return text


def enforce_match(match: str, tenant: str, index: int = 1) -> str:
    """One ``match[]`` series selector restricted to ``tenant`` (``index`` names it in errors)."""
    where = f"match[] {index}"
    expr = _parse(match, where)
    if not isinstance(expr, pp.VectorSelector) or expr.offset is not None or expr.at is not None:
        raise BadQuery(f'{where} must be a series selector such as name{{label="value"}}')
    text = _Printer(tenant, where).expr(expr)
    _verify(text, expr, tenant, where)
    return text


def tenant_selector(tenant: str) -> str:
    """The ``match[]`` that stands for "all of the tenant's series": ``{tenant="T"}``."""
    return f"{{{TENANT}={promql_string(tenant)}}}"


# --- before parsing -----------------------------------------------------------------------------------


def _skeleton(query: str) -> tuple[str, int]:
    """The query outside string literals, comments and braces, and its deepest nesting of (), [], {}.

    Only an estimate of cost: the parser decides what the query is. A string the parser would read
    differently only moves the estimate."""
    out: list[str] = []
    depth = deepest = braces = 0
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch in "\"'`":
            j = i + 1
            while j < n and query[j] != ch:
                j += 2 if query[j] == "\\" and ch != "`" else 1
            i = j + 1
            out.append(" ")
            continue
        if ch == "#":
            j = query.find("\n", i)
            i = n if j < 0 else j
            continue
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
            braces += ch == "{"
        elif ch in ")]}":
            depth -= 1
            braces -= ch == "}"
        if braces <= 0 or ch == "{":
            out.append(ch)
        i += 1
    return "".join(out), deepest


def _check_cost(query: str, what: str) -> None:
    skeleton, deepest = _skeleton(query)
    if deepest > MAX_DEPTH:
        raise BadQuery(f"{what} is nested {deepest} deep; the gateway's limit is {MAX_DEPTH}")
    operators = len(_OPERATOR_TOKEN.findall(skeleton))
    if operators > MAX_OPERATORS:
        raise BadQuery(f"{what} has {operators} operators and calls; the gateway's limit is {MAX_OPERATORS}")
    if _NEGATIVE_AT.search(skeleton):
        raise BadQuery(f"{what}: negative @ timestamps are not supported by the gateway")


def _parse(query: str, what: str) -> Any:
    _check_cost(query, what)
    try:
        return pp.parse(query)
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - the binding raises ValueError, and panics as BaseException
        raise BadQuery(f"{what}: {_short(str(exc))}") from None


_QUOTED = re.compile(r"'([^']*)'")
_SAFE_FRAGMENT = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_:]{0,63}|[^A-Za-z0-9\s])$")


def _short(text: str) -> str:
    """The parser's message without the caller's text beyond a name or one character: regexes and
    other quoted fragments are left out."""
    text = " ".join(text.split())
    if "illegal regex" in text:
        return "illegal regular expression in a matcher"
    text = _QUOTED.sub(lambda m: m.group(0) if _SAFE_FRAGMENT.match(m.group(1)) else "'...'", text)
    text = text.split(' "', 1)[0] if text.count('"') else text  # a quoted string's start
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 3] + "..."


# --- printing -----------------------------------------------------------------------------------------


def _label(name: str) -> str:
    return name if _LABEL_RE.match(name) else promql_string(name)


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15 and math.copysign(1.0, value) > 0:
        return str(int(value))
    return repr(value)


def _duration(delta: timedelta) -> str:
    ms = delta // _MS
    if timedelta(milliseconds=ms) != delta:
        raise BadQuery("durations finer than a millisecond are not supported")
    sign, ms = ("-", -ms) if ms < 0 else ("", ms)
    out = ""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            out += f"{count}{unit}"
    return sign + (out or "0s")


def _at(at: Any) -> str:
    kind = str(at.type)
    if kind.endswith(".Start"):
        return " @ start()"
    if kind.endswith(".End"):
        return " @ end()"
    try:
        ms = (at.at - _EPOCH) // _MS
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException:  # noqa: BLE001 - the binding panics or overflows on times it cannot convert
        raise BadQuery("an @ timestamp is out of the range the gateway supports") from None
    if ms < 0:
        raise BadQuery("negative @ timestamps are not supported by the gateway")
    return f" @ {ms // 1000}.{ms % 1000:03d}"


def _modifiers(node: Any) -> str:
    at = node.at
    offset = node.offset
    return (_at(at) if at is not None else "") + (
        f" offset {_duration(offset)}" if offset is not None else ""
    )


def _groups(vs: Any, where: str) -> list[list[Any]]:
    """The selector's matcher groups: one, or one per ``or`` alternative."""
    matchers = vs.matchers
    plain, alternatives = list(matchers.matchers), [list(g) for g in matchers.or_matchers]
    if alternatives and plain:
        raise BadQuery(f"{where}: matchers both outside and inside 'or' alternatives are not supported")
    return alternatives or [plain]


class _Printer:
    """Prints an expression as PromQL with every selector restricted to one tenant."""

    def __init__(self, tenant: str, match_label: str | None = None) -> None:
        self.tenant = tenant
        self.tenant_matcher = f"{TENANT}={promql_string(tenant)}"
        self.match_label = match_label  # "match[] N" when printing a match[] selector
        self.selectors = 0

    def expr(self, node: Any) -> str:
        if isinstance(node, pp.VectorSelector):
            return self.selector(node, "vector selector") + _modifiers(node)
        if isinstance(node, pp.MatrixSelector):
            vs = node.vector_selector
            core = self.selector(vs, "matrix selector")
            return f"{core}[{_duration(node.range)}]{_modifiers(vs)}"
        if isinstance(node, pp.Call):
            return self.call(node)
        if isinstance(node, pp.AggregateExpr):
            return self.aggregate(node)
        if isinstance(node, pp.BinaryExpr):
            return self.binary(node)
        if isinstance(node, pp.ParenExpr):
            return f"({self.expr(node.expr)})"
        if isinstance(node, pp.UnaryExpr):
            inner = self.expr(node.expr)
            return f"-({inner})" if inner.startswith("-") else f"-{inner}"
        if isinstance(node, pp.SubqueryExpr):
            return self.subquery(node)
        if isinstance(node, pp.NumberLiteral):
            return _number(node.val)
        if isinstance(node, pp.StringLiteral):
            return promql_string(node.val)
        raise BadQuery(f"unsupported expression {type(node).__name__}")

    def selector(self, vs: Any, kind: str) -> str:
        """``name{tenant="T",...}`` without modifiers; refuses another tenant's matchers."""
        self.selectors += 1
        name = vs.name
        plain_name = name is not None and _METRIC_RE.match(name) and name.lower() not in _KEYWORDS
        where = self.match_label or f"selector {self.selectors} ({kind}"
        if self.match_label is None:
            where += f" {name})" if plain_name and len(name) <= 64 else ")"
        groups = []
        for group in _groups(vs, where):
            parts = [self.tenant_matcher]
            if name is not None and not plain_name:
                parts.append(f"__name__={promql_string(name)}")
            for m in group:
                op = _MATCH_OPS[str(m.op)]
                if m.name == TENANT:
                    if op == "=" and m.value == self.tenant:
                        continue
                    raise Forbidden(
                        f"{where} has the matcher {TENANT}{op}...; a key of tenant {self.tenant!r} "
                        f"may only select {self.tenant_matcher} (or name no tenant: it is added)"
                    )
                parts.append(f"{_label(m.name)}{op}{promql_string(m.value)}")
            groups.append(",".join(parts))
        return f"{name if plain_name else ''}{{{' or '.join(groups)}}}"

    def call(self, node: Any) -> str:
        name = node.func.name
        if name in _REFUSED_FUNCTIONS:
            raise Forbidden(f"{_REFUSED_FUNCTIONS[name]}; it is not available to tenant keys")
        args = list(node.args)
        destination = _LABEL_WRITERS.get(name)
        if (
            destination is not None
            and len(args) > destination
            and isinstance(args[destination], pp.StringLiteral)
            and args[destination].val == TENANT
        ):
            raise Forbidden(f"{name}() may not write the {TENANT} label")
        return f"{name}({', '.join(self.expr(a) for a in args)})"

    def aggregate(self, node: Any) -> str:
        op = str(node.op)
        param = node.param
        if op == "count_values" and isinstance(param, pp.StringLiteral) and param.val == TENANT:
            raise Forbidden(f"count_values() may not write the {TENANT} label")
        modifier = node.modifier
        grouping = ""
        if modifier is not None:
            word = "without" if str(modifier.type).endswith(".Without") else "by"
            grouping = f" {word} ({', '.join(_label(x) for x in modifier.labels)}) "
        inner = self.expr(node.expr)
        body = f"{self.expr(param)}, {inner}" if param is not None else inner
        return f"{op}{grouping}({body})"

    def binary(self, node: Any) -> str:
        lhs = self.expr(node.lhs)
        text = f"{lhs} {node.op}"
        modifier = node.modifier
        if modifier is not None:
            fill = modifier.fill_values
            if fill is not None and (fill.lhs is not None or fill.rhs is not None):
                raise BadQuery("fill modifiers of binary operations are not supported by the gateway")
            if modifier.return_bool:
                text += " bool"
            matching = modifier.matching
            if matching is not None:
                word = "ignoring" if str(matching.type).endswith(".Exclude") else "on"
                text += f" {word} ({', '.join(_label(x) for x in matching.labels)})"
            card = str(modifier.card)
            if card.endswith((".ManyToOne", ".OneToMany")):
                word = "group_left" if card.endswith(".ManyToOne") else "group_right"
                text += f" {word} ({', '.join(_label(x) for x in modifier.group_labels or [])})"
        return f"{text} {self.expr(node.rhs)}"

    def subquery(self, node: Any) -> str:
        inner_node = node.expr
        inner = self.expr(inner_node)
        bare = isinstance(inner_node, pp.Call | pp.AggregateExpr | pp.ParenExpr) or (
            isinstance(inner_node, pp.VectorSelector | pp.SubqueryExpr)
            and inner_node.offset is None
            and inner_node.at is None
        )
        if not bare:
            inner = f"({inner})"
        step = _duration(node.step) if node.step is not None else ""
        return f"{inner}[{_duration(node.range)}:{step}]{_modifiers(node)}"


# --- checking what was printed ----------------------------------------------------------------------


def _verify(text: str, original: Any, tenant: str, what: str) -> None:
    """The printed text parses to the original tree plus the tenant, with exactly ``tenant="T"`` everywhere."""
    try:
        printed = pp.parse(text)
        same = _shape(printed, None, tenant) == _shape(original, tenant, tenant)
    except EnforceError:
        same = False
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException:  # noqa: BLE001 - as in _parse
        same = False
    if not same:
        raise BadQuery(f"{what}: the gateway cannot re-print this query faithfully; simplify it")


def _shape(node: Any, add: str | None, tenant: str) -> Any:
    """A comparable picture of the tree, parentheses left out. With ``add``, selectors get
    ``tenant=add`` (the original tree); without, they must already carry exactly ``tenant="T"``."""
    if isinstance(node, pp.ParenExpr):
        return _shape(node.expr, add, tenant)
    if isinstance(node, pp.VectorSelector):
        groups = []
        for group in _groups(node, "selector"):
            matchers = {(m.name, _MATCH_OPS[str(m.op)], m.value) for m in group}
            if node.name is not None:
                matchers.add(("__name__", "=", node.name))
            tenants = {m for m in matchers if m[0] == TENANT}
            if add is not None:
                matchers = (matchers - tenants) | {(TENANT, "=", add)}
            elif tenants != {(TENANT, "=", tenant)}:
                raise BadQuery("a printed selector lost its tenant")
            groups.append(frozenset(matchers))
        return ("vs", tuple(groups), _modifier_shape(node))
    if isinstance(node, pp.MatrixSelector):
        return ("ms", _shape(node.vector_selector, add, tenant), node.range)
    if isinstance(node, pp.SubqueryExpr):
        return ("sq", _shape(node.expr, add, tenant), node.range, node.step, _modifier_shape(node))
    if isinstance(node, pp.Call):
        return ("call", node.func.name, tuple(_shape(a, add, tenant) for a in node.args))
    if isinstance(node, pp.AggregateExpr):
        grouping = node.modifier
        param = node.param
        return (
            "agg",
            str(node.op),
            None if grouping is None else (str(grouping.type), tuple(grouping.labels)),
            None if param is None else _shape(param, add, tenant),
            _shape(node.expr, add, tenant),
        )
    if isinstance(node, pp.BinaryExpr):
        mod = node.modifier
        mod_shape = None
        if mod is not None:
            matching = mod.matching
            mod_shape = (
                str(mod.card),
                mod.return_bool,
                None if matching is None else (str(matching.type), tuple(matching.labels)),
                tuple(mod.group_labels or ()),
            )
        return ("bin", str(node.op), mod_shape, _shape(node.lhs, add, tenant), _shape(node.rhs, add, tenant))
    if isinstance(node, pp.UnaryExpr):
        return ("neg", _shape(node.expr, add, tenant))
    if isinstance(node, pp.NumberLiteral):
        return ("num", repr(node.val))
    if isinstance(node, pp.StringLiteral):
        return ("str", node.val)
    raise BadQuery(f"unsupported expression {type(node).__name__}")


def _modifier_shape(node: Any) -> tuple[Any, ...]:
    at = node.at
    return (None if at is None else _at(at), node.offset)
