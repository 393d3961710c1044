"""The live view's HTML (jinja2 templates, autoescaped) and the files the pages load.

plotly.js is the copy inside the ``plotly`` wheel, served from here: the view works without internet.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

HERE = Path(__file__).parent
STATIC = {
    "plotly.min.js": ("plotly", "package_data/plotly.min.js", "text/javascript"),
    "live.js": ("tenantpulse.grafana.live", "static/live.js", "text/javascript"),
    "live.css": ("tenantpulse.grafana.live", "static/live.css", "text/css"),
}


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )


def render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(**context)


@cache
def static(name: str) -> tuple[bytes, str] | None:
    """(content, media type) of a served file, or None."""
    if name not in STATIC:
        return None
    package, path, media = STATIC[name]
    return (resources.files(package) / path).read_bytes(), media
