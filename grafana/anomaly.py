"""Panels over the anomaly sidecar's output: expected band on the observed series, scores, forecasts.

The band is drawn with Grafana's ``fillBelowTo`` override (upper filled down to lower), so the
observed line visibly leaves the shaded area when the sidecar calls it unusual.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafanalib import core as g

from tenantpulse.conventions import catalog as c
from tenantpulse.conventions import indicators
from tenantpulse.conventions.sensitivity import SENSITIVITY
from tenantpulse.grafana import panels as p
from tenantpulse.grafana import templating as tv

LOWER = "lower"
UPPER = "upper"
EXPECTED = "expected"


def _sidecar(metric: c.Metric, indicator: str, **extra: str) -> str:
    return f"max({metric.selector(tenant=p.TENANT_MATCH, indicator=indicator, **extra)})"


def _band_overrides(lower: str, upper: str) -> list[dict]:
    hidden_line = {"id": "custom.lineWidth", "value": 0}
    return [
        {
            "matcher": {"id": "byName", "options": upper},
            "properties": [
                {"id": "custom.fillBelowTo", "value": lower},
                {"id": "custom.fillOpacity", "value": 20},
                hidden_line,
            ],
        },
        {"matcher": {"id": "byName", "options": lower}, "properties": [hidden_line]},
    ]


def band_panel(indicator: str) -> g.TimeSeries:
    """Observed indicator, the sidecar's expected value and its band for the selected tenant."""
    ind = indicators.get(indicator)
    queries = [
        p.Query(f"max({p.indicator_expr(indicator)})", "observed"),
        p.Query(_sidecar(c.ANOMALY_EXPECTED, indicator), EXPECTED),
        p.Query(_sidecar(c.ANOMALY_LOWER, indicator), LOWER),
        p.Query(_sidecar(c.ANOMALY_UPPER, indicator), UPPER),
    ]
    return p.timeseries(
        f"{indicator}: observed vs expected band",
        queries,
        unit=p.unit_of(ind.unit),
        description=f"{ind.description} Shaded: the band the anomaly sidecar expected.",
        overrides=_band_overrides(LOWER, UPPER),
        fill=0,
    )


def score_panel(watched: Sequence[str] = indicators.WATCHED) -> g.TimeSeries:
    """Anomaly score in [0, 1] per indicator; the dashed line is the 'unusual' level."""
    for name in watched:
        indicators.get(name)
    sel = "|".join(watched)
    expr = f"max by ({c.INDICATOR}) ({c.ANOMALY_SCORE.selector(tenant=p.TENANT_MATCH, indicator='=~' + sel)})"
    panel = p.timeseries(
        "Anomaly score",
        [p.Query(expr, f"{{{{{c.INDICATOR}}}}}")],
        unit="percentunit",
        description="How unusual each watched indicator is now (0 = normal, 1 = extremely unusual).",
    )
    panel.thresholdsStyleMode = "dashed"
    panel.thresholds = [
        {"color": "green", "value": None},
        {"color": "orange", "value": SENSITIVITY["high"]},
        {"color": "red", "value": SENSITIVITY["low"]},
    ]
    return panel


def forecast_panel(indicator: str) -> g.TimeSeries:
    """Forecast at the selected horizon with its interval, next to the observed series."""
    ind = indicators.get(indicator)
    horizon = f"${tv.HORIZON}"
    queries = [
        p.Query(f"max({p.indicator_expr(indicator)})", "observed"),
        p.Query(_sidecar(c.FORECAST, indicator, horizon=horizon), "forecast"),
        p.Query(_sidecar(c.FORECAST_LOWER, indicator, horizon=horizon), LOWER),
        p.Query(_sidecar(c.FORECAST_UPPER, indicator, horizon=horizon), UPPER),
    ]
    return p.timeseries(
        f"{indicator}: forecast at ${tv.HORIZON}",
        queries,
        unit=p.unit_of(ind.unit),
        description=f"{ind.description} Forecast at the chosen horizon, shaded: its prediction interval.",
        overrides=_band_overrides(LOWER, UPPER),
        fill=0,
    )
