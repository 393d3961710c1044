"""The small subset of Prometheus annotation templating that alert specs may use.

The generated promtool tests must state each firing alert's annotations exactly, so the
generator renders them itself: only forms whose output it can predict are allowed. A bare
``{{ $value }}`` is refused because Go prints float noise (``0.019999999999999997``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_FORMS: dict[str, re.Pattern[str]] = {
    "labels": re.compile(r"^\$labels\.([A-Za-z_][A-Za-z0-9_]*)$"),
    "humanize": re.compile(r"^\$value\s*\|\s*humanize$"),
    "percentage": re.compile(r"^\$value\s*\|\s*humanizePercentage$"),
    "printf": re.compile(r'^printf\s+"%\.(\d)f"\s+\$value$'),
}
SUPPORTED = (
    "{{ $labels.<name> }}",
    "{{ $value | humanize }}",
    "{{ $value | humanizePercentage }}",
    '{{ printf "%.2f" $value }}',
)


class TemplateError(ValueError):
    pass


def value_template(unit: str) -> str:
    """How to show an alert's value: ratios as percentages, everything else with SI prefixes."""
    return "{{ $value | humanizePercentage }}" if unit == "ratio" else "{{ $value | humanize }}"


def check_template(text: str) -> None:
    """Refuse template actions the generator cannot render; the message lists the valid forms."""
    if text.count("{{") != len(_ACTION.findall(text)):
        raise TemplateError(f"unbalanced '{{{{' in {text!r}")
    for action in _ACTION.findall(text):
        if not any(p.match(action) for p in _FORMS.values()):
            hint = " (bare $value prints float noise)" if action == "$value" else ""
            raise TemplateError(
                f"unsupported template {{{{ {action} }}}}{hint}; valid: {', '.join(SUPPORTED)}"
            )


def render(text: str, labels: Mapping[str, str], value: float) -> str:
    """What Prometheus renders for ``text`` given the expression's labels and value."""

    def one(m: re.Match[str]) -> str:
        action = m.group(1)
        if lab := _FORMS["labels"].match(action):
            return labels.get(lab.group(1), "")
        if _FORMS["humanize"].match(action):
            return humanize(value)
        if _FORMS["percentage"].match(action):
            return _g4(value * 100) + "%"
        if p := _FORMS["printf"].match(action):
            return f"{value:.{p.group(1)}f}"
        raise TemplateError(f"unsupported template {{{{ {action} }}}}")

    return _ACTION.sub(one, text)


def humanize(v: float) -> str:
    """Prometheus's ``humanize``: 4 significant digits with an SI prefix."""
    if v == 0 or v != v or abs(v) == float("inf"):
        return _g4(v)
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
    else:
        for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
            if abs(v) >= 1:
                break
            prefix, v = p, v * 1000
    return _g4(v) + prefix


def _g4(v: float) -> str:
    return "%.4g" % v  # noqa: UP031 - same rules as Go's %.4g
