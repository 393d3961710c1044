"""A dashboard's variables resolved for one viewer: options, the chosen value, and what may be chosen.

A tenant key's ``tenant`` is fixed to its own tenant: it is the only option, and asking for another is
refused (403), never answered with other data. Values go into PromQL as Grafana puts them (``$name``,
``${name}``), so a value may not hold quotes or backslashes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tenantpulse.grafana import templating as tv
from tenantpulse.grafana.live.model import Dashboard, Variable
from tenantpulse.grafana.live.read import Reader, ReadError
from tenantpulse.web.errors import ApiError

PREFIX = "var-"  # as in Grafana's dashboard URLs: ?var-tenant=acme
MAX_VALUE = 200
_LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?:(?P<match>.*\S)\s*,\s*)?(?P<label>[A-Za-z_]\w*)\s*\)\s*$"
)
_REFERENCE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_UNSAFE = re.compile(r'["\\\n\r`]')


@dataclass(frozen=True)
class Resolved:
    values: dict[str, str]
    shown: list[dict[str, Any]]  # for the page's selectors


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``$name`` and ``${name}`` replaced by their values; unknown names are left for the query to fail."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return values.get(name, m.group(0))

    return _REFERENCE.sub(one, text)


def label_values_path(label: str) -> str:
    return f"/api/v1/label/{label}/values"


def _options(var: Variable, values: Mapping[str, str], reader: Reader) -> list[str]:
    if var.kind == "constant":
        return [var.query]
    if var.kind in ("custom", "interval"):
        return [o.strip() for o in var.query.split(",") if o.strip()]
    if var.kind != "query":
        return []
    m = _LABEL_VALUES.match(var.query)
    if m is None:
        return []
    params = [("match[]", substitute(m.group("match"), values))] if m.group("match") else []
    try:
        found = reader.read("label_values", label_values_path(m.group("label")), params)
    except ReadError:
        return []
    return sorted(str(v) for v in found or [])


def _bad(name: str, reason: str, status: int = 400) -> ApiError:
    return ApiError(status, "invalid_input" if status == 400 else "forbidden", reason, field=PREFIX + name)


def resolve(
    dashboard: Dashboard, requested: Mapping[str, str], fixed_tenant: str | None, reader: Reader
) -> Resolved:
    """Each variable in order (a later one's query may use an earlier one's value)."""
    known = {v.name for v in dashboard.variables}
    for name, value in requested.items():
        if name not in known:
            raise _bad(name, "this dashboard has no such variable")
        if len(value) > MAX_VALUE or _UNSAFE.search(value):
            raise _bad(name, f"at most {MAX_VALUE} characters, without quotes or backslashes")
    values: dict[str, str] = {}
    shown = []
    for var in dashboard.variables:
        if var.kind == "datasource":
            continue
        fixed = var.name == tv.TENANT and fixed_tenant is not None
        wanted = requested.get(var.name)
        if fixed:
            assert fixed_tenant is not None
            if wanted not in (None, fixed_tenant):
                raise _bad(var.name, "this key reads its own tenant only", 403)
            options = [fixed_tenant]
        else:
            options = _options(var, values, reader)
        if wanted is not None and var.kind != "textbox" and wanted not in options:
            raise _bad(var.name, "not one of this variable's values")
        default = var.default if var.default in options else (options[0] if options else var.default)
        value = wanted if wanted is not None else (default or "")
        values[var.name] = value
        shown.append(
            {
                "name": var.name,
                "label": var.label,
                "options": options,
                "value": value,
                "fixed": fixed or var.kind == "constant",
                "hidden": var.hidden,
            }
        )
    return Resolved(values, shown)
