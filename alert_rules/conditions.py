"""The condition language: ``error_rate[10m] > 0.05 and request_rate > 1`` -> PromQL by tenant.

Clauses name indicators from ``exporters.indicators``; ``and`` binds tighter than ``or``,
as in PromQL, so the compiled expression means what the spec reads.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tenantpulse.conventions import indicators

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_CLAUSE = re.compile(
    r"^\s*(?P<ind>[A-Za-z_][A-Za-z0-9_]*)\s*(\[(?P<win>[^\]]*)\])?\s*(?P<op>[<>=!~]*)\s*(?P<num>\S*)\s*$"
)
_DURATION = re.compile(r"^((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?$")
_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


class ConditionError(ValueError):
    pass


@dataclass(frozen=True)
class Clause:
    indicator: str
    window: str
    op: str
    threshold: float

    def promql(self, tenants: Sequence[str]) -> str:
        expr = indicators.get(self.indicator).promql(tenants or None, self.window)
        return f"({expr}) {self.op} {self.threshold!r}"

    def holds(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)


@dataclass(frozen=True)
class Condition:
    """Disjunction of conjunctions: ``groups[i]`` are clauses joined by ``and``; groups by ``or``."""

    text: str
    groups: tuple[tuple[Clause, ...], ...]

    @property
    def clauses(self) -> tuple[Clause, ...]:
        return tuple(c for g in self.groups for c in g)

    def promql(self, tenants: Sequence[str] = ()) -> str:
        ands = [" and ".join(c.promql(tenants) for c in g) for g in self.groups]
        return " or ".join(ands)

    def holds(self, values: Sequence[float]) -> bool:
        """Truth of the condition given each clause's indicator value (in ``clauses`` order)."""
        it = iter(values)
        return any([all([c.holds(next(it)) for c in g]) for g in self.groups])  # lists: consume every value


def parse_condition(text: str, default_window: str = "5m") -> Condition:
    """Parse; errors name the bad part and list the valid indicators / operators."""
    groups = []
    for part in re.split(r"\s+or\s+", text.strip(), flags=re.IGNORECASE):
        group = tuple(_clause(c, default_window) for c in re.split(r"\s+and\s+", part, flags=re.IGNORECASE))
        groups.append(group)
    return Condition(text.strip(), tuple(groups))


def _clause(text: str, default_window: str) -> Clause:
    m = _CLAUSE.match(text)
    if not m or not text.strip():
        raise ConditionError(
            f"cannot parse {text.strip()!r}: expected '<indicator> <op> <number>', e.g. 'error_rate > 0.05'"
        )
    name, win, op, num = m.group("ind"), m.group("win"), m.group("op"), m.group("num")
    if name not in indicators.INDICATORS:
        raise ConditionError(f"unknown indicator {name!r}; valid: {', '.join(sorted(indicators.INDICATORS))}")
    if win is not None and (not win or not _DURATION.match(win) or win in ("0s", "0m")):
        raise ConditionError(f"bad window [{win}] on {name}; use a duration such as [5m], [1h]")
    if op not in OPS:
        raise ConditionError(f"bad operator {op or '(none)'!r} in {text.strip()!r}; valid: {' '.join(OPS)}")
    if op in ("==", "!=") and any(m.type != "gauge" for m in indicators.get(name).metrics):
        raise ConditionError(
            f"{op} on {name} compares a computed rate exactly, and float noise makes that unreliable; "
            "use one of > >= < <="
        )
    if not _NUMBER.match(num):
        raise ConditionError(
            f"bad threshold {num or '(none)'!r} in {text.strip()!r}; expected a number such as 0.05"
        )
    return Clause(name, win or default_window, op, float(num))
