"""The Prometheus exposition formats' conventions: content types and label-value escaping, typed once."""

from __future__ import annotations

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# What a scraper's ``Accept`` header names to ask for OpenMetrics.
OPENMETRICS_MEDIA_TYPE = "application/openmetrics-text"
TEXT_MEDIA_TYPE = "text/plain"


def escape_label_value(value: str) -> str:
    """Escape a label value as both formats require: backslash, double quote, newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
