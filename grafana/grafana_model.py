"""grafanalib's dashboard JSON -> the model current Grafana (11 to 13) reads, in one place.

grafanalib 0.7 still writes Grafana 6/7's model: ``schemaVersion`` 12, the Angular heatmap, gauge
options inside ``fieldConfig`` (where Grafana ignores them), table ``columns``/``fontSize``/``styles``,
legacy keys (``rows``, ``hideControls``, ``style``, ``useTags`` ...) and ``null`` for every unset
option. Panels are still authored with grafanalib; this module rewrites its output to the model of
``@grafana/schema``'s ``Dashboard`` type, with each panel type's ``options`` where Grafana reads them.
Only the base threshold step keeps ``value: null``: that is Grafana's own encoding of -Infinity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

SCHEMA_VERSION = 42  # @grafana/schema 13's defaultDashboard.schemaVersion

Json = dict[str, Any]

DASHBOARD_KEYS = ("uid", "title", "description", "tags", "timezone", "refresh", "time", "links")
PANEL_KEYS = ("id", "type", "title", "description", "datasource", "gridPos", "targets", "transformations")
TARGET_KEYS = ("refId", "datasource", "expr", "legendFormat", "range", "instant", "format", "exemplar")
VARIABLE_KEYS = ("name", "label", "type", "query", "datasource", "hide", "refresh", "sort")
FIELD_KEYS = ("unit", "decimals", "min", "max", "noValue", "displayName", "mappings", "thresholds", "color")
BASE_STEP: Json = {"color": "green", "value": None}  # value null: from -Infinity (Grafana's encoding)
DEFAULT_REFRESH_INTERVALS = ["5s", "10s", "30s", "1m", "5m", "15m", "30m", "1h", "2h", "1d"]


def _set(source: Mapping[str, Any], keys: tuple[str, ...]) -> Json:
    """The keys of ``source`` that hold a value (not None, not an empty string)."""
    return {k: source[k] for k in keys if source.get(k) is not None and source.get(k) != ""}


def dashboard(data: Mapping[str, Any]) -> Json:
    """A whole grafanalib dashboard in the current model."""
    timepicker = data.get("timepicker", {})
    return {
        **_set(data, DASHBOARD_KEYS),
        "schemaVersion": SCHEMA_VERSION,
        "editable": True,
        "graphTooltip": data.get("graphTooltip", 0),
        "fiscalYearStartMonth": 0,
        "timepicker": {
            "hidden": bool(timepicker.get("hidden", False)),
            "refresh_intervals": timepicker.get("refresh_intervals", DEFAULT_REFRESH_INTERVALS),
        },
        "annotations": {"list": data.get("annotations", {}).get("list", [])},
        "templating": {"list": [variable(v) for v in data.get("templating", {}).get("list", [])]},
        "panels": [panel(p) for p in data.get("panels", [])],
    }


def variable(data: Mapping[str, Any]) -> Json:
    """A template variable without grafanalib's tag and interval fields (``useTags``, ``auto*``)."""
    out = {
        **_set(data, VARIABLE_KEYS),
        "options": [],
        "includeAll": bool(data.get("includeAll", False)),
        "multi": bool(data.get("multi", False)),
        "skipUrlSync": False,
        "allowCustomValue": True,
    }
    if data.get("type") == "datasource":
        out.pop("datasource", None)  # a datasource variable lists datasources, it reads none
    current = data.get("current") or {}
    if current.get("value") is not None:
        out["current"] = {k: current[k] for k in ("selected", "text", "value") if current.get(k) is not None}
    return out


def panel(data: Mapping[str, Any]) -> Json:
    """One panel (a row with its nested panels): common keys kept, the type's options rebuilt."""
    if data["type"] == "row":
        return {
            "type": "row",
            "id": data["id"],
            "title": data.get("title", ""),
            "collapsed": bool(data.get("collapsed", False)),
            "gridPos": data["gridPos"],
            "panels": [panel(p) for p in data.get("panels", [])],
        }
    if data["type"] not in CONVERTERS:
        raise ValueError(
            f"no current-model conversion for {data['type']!r} panels; known: {', '.join(CONVERTERS)}"
        )
    # Grafana's defaults, written out as Grafana's own models (the SDK's Panel) write them.
    out = {**_set(data, PANEL_KEYS), "transparent": False, "repeatDirection": "h"}
    for key in ("transformations", "targets"):
        if not out.get(key):
            out.pop(key, None)
    if "targets" in out:
        out["targets"] = [target(t) for t in out["targets"]]
    legacy_defaults = dict(data.get("fieldConfig", {}).get("defaults", {}))
    defaults = field_defaults(legacy_defaults) if "targets" in out else {}
    options, custom = CONVERTERS[data["type"]](data, legacy_defaults, defaults)
    if custom is not None:
        defaults["custom"] = custom
    out["fieldConfig"] = {
        "defaults": defaults,
        "overrides": list(data.get("fieldConfig", {}).get("overrides", [])),
    }
    out["options"] = options
    return out


def target(data: Mapping[str, Any]) -> Json:
    """A Prometheus query: grafanalib's Graphite/InfluxDB fields (``target``, ``metric``, ``step``,
    ``intervalFactor``) dropped; the code editor, since the expressions are generated PromQL."""
    return {**_set(data, TARGET_KEYS), "legendFormat": data.get("legendFormat") or "", "editorMode": "code"}


def field_defaults(legacy: Mapping[str, Any]) -> Json:
    """The standard field options grafanalib set; a panel without threshold steps gets the base step
    alone (grafanalib writes an empty list, which Grafana would replace by its green/red-at-80)."""
    out = _set(legacy, FIELD_KEYS)
    if not out.get("thresholds", {}).get("steps"):
        out["thresholds"] = {"mode": "absolute", "steps": [dict(BASE_STEP)]}
    return out


def _reduce(calcs: list[str], values: bool = False) -> Json:
    return {"calcs": calcs, "fields": "", "values": values}


def _timeseries(
    data: Mapping[str, Any], legacy: Mapping[str, Any], defaults: Json
) -> tuple[Json, Json | None]:
    custom = dict(legacy.get("custom", {}))
    for key in ("axisSoftMin", "axisSoftMax"):
        if custom.get(key) is None:
            custom.pop(key, None)
    if custom.get("axisLabel") == "":
        custom.pop("axisLabel")
    scale = custom.get("scaleDistribution", {})
    if scale.get("type") == "linear":
        custom["scaleDistribution"] = {"type": "linear"}  # ``log`` is the base of a log scale only
    if not custom.get("stacking"):
        custom["stacking"] = {"mode": "none", "group": "A"}
    defaults.setdefault("color", {"mode": "palette-classic"})
    options = dict(data.get("options", {}))
    legend = options.get("legend", {})
    options["legend"] = {
        "displayMode": legend.get("displayMode", "list"),
        "placement": legend.get("placement", "bottom"),
        "showLegend": legend.get("displayMode") != "hidden",
        "calcs": legend.get("calcs", []),
    }
    return options, custom


def _stat(data: Mapping[str, Any], legacy: Mapping[str, Any], defaults: Json) -> tuple[Json, Json | None]:
    options = dict(data.get("options", {}))
    defaults.setdefault("color", {"mode": "thresholds"})
    return {
        "reduceOptions": _reduce(options["reduceOptions"]["calcs"]),
        "colorMode": options.get("colorMode", "value"),
        "graphMode": options.get("graphMode", "area"),
        "justifyMode": options.get("justifyMode", "auto"),
        "orientation": options.get("orientation", "auto"),
        "textMode": options.get("textMode", "auto"),
        "wideLayout": True,
        "showPercentChange": False,
        "percentChangeColorMode": "standard",
    }, None


def _gauge(data: Mapping[str, Any], legacy: Mapping[str, Any], defaults: Json) -> tuple[Json, Json | None]:
    """grafanalib puts the gauge's options in ``fieldConfig``; Grafana reads them from ``options``."""
    defaults.setdefault("color", {"mode": "thresholds"})
    return {
        "reduceOptions": _reduce(
            list(legacy.get("calcs", ["lastNotNull"])), bool(legacy.get("values", False))
        ),
        "showThresholdLabels": bool(data["fieldConfig"].get("showThresholdLabels", False)),
        "showThresholdMarkers": bool(data["fieldConfig"].get("showThresholdMarkers", True)),
        "orientation": "auto",
        "sizing": "auto",
        "minVizWidth": 75,
        "minVizHeight": 75,
    }, None


def _table(data: Mapping[str, Any], legacy: Mapping[str, Any], defaults: Json) -> tuple[Json, Json | None]:
    """Table options and per-column field options; grafanalib's ``columns``/``fontSize``/``mappings``
    (Angular table) are left behind; units per column come as overrides. No ``footer``: Grafana 13
    moved it out of the options, and without one none is drawn."""
    custom = dict(legacy.get("custom", {}))
    defaults.setdefault("color", {"mode": "thresholds"})
    options = data.get("options", {})
    return {
        "showHeader": bool(options.get("showHeader", True)),
        "cellHeight": "sm",
        "frameIndex": 0,
        "showTypeIcons": False,
        **({"sortBy": options["sortBy"]} if options.get("sortBy") else {}),
    }, {
        "align": custom.get("align", "auto"),
        "cellOptions": {"type": "auto"},
        "filterable": bool(custom.get("filterable", False)),
        "inspect": False,
    }


# Angular heatmap bucket bounds -> the Grafana 9+ heatmap's cell layout (``le``: upper bound).
BUCKET_LAYOUT = {"upper": "le", "lower": "ge", "middle": "unknown", "auto": "auto"}


def _heatmap(data: Mapping[str, Any], legacy: Mapping[str, Any], defaults: Json) -> tuple[Json, Json | None]:
    """The Angular heatmap's settings (``dataFormat``, ``yBucketBound``, ``hideZeroBuckets``, the
    ``color`` block) as the Grafana 9+ heatmap's options, the way Grafana's own migration reads them."""
    color = data.get("color", {})
    y_axis = data.get("yAxis", {})
    scheme = str(color.get("colorScheme", "interpolateOranges")).removeprefix("interpolate")
    options: Json = {
        "calculate": data.get("dataFormat") != "tsbuckets",
        "rowsFrame": {"layout": BUCKET_LAYOUT.get(str(data.get("yBucketBound", "auto")), "auto")},
        "yAxis": {"axisPlacement": "left", "reverse": bool(data.get("reverseYBuckets", False))},
        "color": {
            "mode": "opacity" if color.get("mode") == "opacity" else "scheme",
            "scheme": scheme,
            "fill": "dark-orange",
            "scale": "exponential" if color.get("colorScale") == "sqrt" else "linear",
            "exponent": float(color.get("exponent", 0.5)),
            "steps": 64,
            "reverse": False,
        },
        "cellGap": 1,
        "showValue": "auto",
        "legend": {"show": bool(data.get("legend", {}).get("show", False))},
        "tooltip": {"mode": "single", "yHistogram": False, "showColorScale": False},
        "exemplars": {"color": "rgba(255,0,255,0.7)"},
        "cellValues": {},
        "selectionMode": "x",
    }
    if y_axis.get("format"):
        options["yAxis"]["unit"] = y_axis["format"]
    if data.get("hideZeroBuckets"):
        options["filterValues"] = {"le": 1e-9}
    return options, {
        "hideFrom": {"legend": False, "tooltip": False, "viz": False},
        "scaleDistribution": {"type": "linear"},
    }


def _text(data: Mapping[str, Any], legacy: Mapping[str, Any], defaults: Json) -> tuple[Json, Json | None]:
    """Markdown (or HTML) text; Grafana 10+ also reads the code-view options, so they are given."""
    options = data.get("options", {})
    return {
        "mode": options.get("mode", "markdown"),
        "content": options.get("content", ""),
        "code": {"language": "plaintext", "showLineNumbers": False, "showMiniMap": False},
    }, None


# (grafanalib's panel, its fieldConfig.defaults, the current defaults to complete) -> (options, custom)
Converter = Callable[[Mapping[str, Any], Mapping[str, Any], Json], tuple[Json, Json | None]]
CONVERTERS: dict[str, Converter] = {
    "timeseries": _timeseries,
    "stat": _stat,
    "gauge": _gauge,
    "table": _table,
    "heatmap": _heatmap,
    "text": _text,
}
