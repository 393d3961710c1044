"""Burn-rate windows and factors for any SLO period, from the SRE workbook's budget shares.

The workbook pages when 2% of a 30-day budget goes in 1 hour (checked again over 5 minutes, so the
page resolves soon after the burn stops) or 5% in 6 hours (30 minutes), and opens a ticket when 10%
goes in 1 day (2 hours) or in 3 days (6 hours). For another period the windows keep the same share of
the period (a 7-day SLO pages on 14 minutes), rounded to whole minutes; the factor is the share of
budget spent over the window at a constant burn, ``share * period / window``, so a 30-day period keeps
exactly 14.4, 6, 3 and 1. Periods too short for distinct minute windows, and objectives whose page
threshold is an error ratio above 100%, are refused: such a page could never fire.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenantpulse.kernel.durations import format_duration, parse_duration

REFERENCE_PERIOD_S = 30 * 86400
MIN_WINDOW_S = 60
"""Shortest rate window: promtool's generated tests sample every 60 s, so a shorter window holds a single
sample and ``rate()`` returns nothing (the tests could not check the rule)."""

# (kind, share of the budget, long window, short window) for a 30-day period, in seconds.
WORKBOOK = (
    ("page", 0.02, 3600, 300),
    ("page", 0.05, 6 * 3600, 1800),
    ("ticket", 0.10, 86400, 2 * 3600),
    ("ticket", 0.10, 3 * 86400, 6 * 3600),
)


class BurnError(ValueError):
    """A period or objective no burn-rate alert can work with; the message says why."""


@dataclass(frozen=True)
class BurnWindow:
    """Fires when both windows' error ratios exceed ``factor`` times the error budget."""

    factor: float
    long: str
    short: str
    share: float  # of the budget spent over ``long`` at this burn


@dataclass(frozen=True)
class BurnRule:
    """One alert (page or ticket): any of its windows firing fires it."""

    kind: str
    windows: tuple[BurnWindow, ...]


def _minutes(seconds: float) -> int:
    return int(seconds // 60 + (1 if seconds % 60 >= 30 else 0))


def burn_rules(period_s: float) -> tuple[BurnRule, ...]:
    """The page and the ticket rule for an SLO period of ``period_s`` seconds."""
    scale = period_s / REFERENCE_PERIOD_S
    by_kind: dict[str, list[BurnWindow]] = {"page": [], "ticket": []}
    for kind, share, long_s, short_s in WORKBOOK:
        long_m = _minutes(long_s * scale)
        short_m = max(MIN_WINDOW_S // 60, _minutes(short_s * scale))
        if long_m <= short_m:
            raise BurnError(
                f"period {format_duration(period_s)} is too short: its {share:.0%}-of-budget {kind} window "
                f"would be {format_duration(long_s * scale)}, not longer than the shortest rate window "
                f"({format_duration(MIN_WINDOW_S)}, promtool's sample interval); use a period of at least 1d"
            )
        factor = round(share * period_s / (long_m * 60), 6)
        by_kind[kind].append(
            BurnWindow(factor, format_duration(long_m * 60), format_duration(short_m * 60), share)
        )
    return tuple(BurnRule(kind, tuple(ws)) for kind, ws in by_kind.items())


def check_objective(objective: float, rules: tuple[BurnRule, ...]) -> None:
    """Refuse an objective for which some window's threshold is an error ratio of 100% or more."""
    budget = 1 - objective
    for rule in rules:
        for w in rule.windows:
            if w.factor * budget >= 1:
                highest = 1 - 1 / w.factor
                raise BurnError(
                    f"objective {objective:g} can never {rule.kind}: {w.factor:g}x its error budget over "
                    f"{w.long} is an error ratio of {w.factor * budget:.0%}; use an objective above {highest:.4g}"
                )


def windows(rules: tuple[BurnRule, ...], period: str, period_s: float) -> tuple[str, ...]:
    """Every window the rules read, shortest first, and the period (for the remaining budget)."""
    by_seconds = {parse_duration(w): w for r in rules for bw in r.windows for w in (bw.long, bw.short)}
    by_seconds[period_s] = period  # spelled as the spec does: dashboards and budget rules name it so
    return tuple(by_seconds[s] for s in sorted(by_seconds))
