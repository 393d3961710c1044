"""PromQL text conventions: how a value becomes a PromQL string literal, typed once.

Every label value, regex or function argument that goes into PromQL text built by the bundle (the
catalog's selectors, hence rules, dashboards and the gateway's rewritten queries) is quoted by
``promql_string``. A value is data, never syntax: ``x"}[5m]) or rate(y{tenant=~".+`` must stay one
literal, or a dashboard spec's label filter becomes a query that reads every tenant.

This is not the exposition format's escaping (``conventions.exposition.escape_label_value``) although
the characters are the same today: that one writes label values in scraped text and has no quotes.
PromQL strings follow Go's syntax: inside double quotes a backslash starts an escape, a double quote
ends the literal and a raw newline is an error, so those three are escaped and nothing else needs to be.
"""

from __future__ import annotations


def promql_string(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal that means exactly ``value``."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
