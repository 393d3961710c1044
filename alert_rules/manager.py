"""``AlertManager``: the Python face of the spec (``create_alert`` / ``create_ml_alert`` / ``create_slo``).

Each call adds the same dict the YAML would hold and re-validates the whole spec at once, so a
bad call raises ``SpecError`` immediately and the generated files are identical to the YAML route.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tenantpulse.alert_rules.alertmanager import write_alertmanager
from tenantpulse.alert_rules.rules import write_rules
from tenantpulse.alert_rules.spec import Spec, alert_error, parse_spec


class AlertManager:
    """Accumulates a spec; ``spec()`` returns it validated, ``write()`` generates the files."""

    def __init__(
        self,
        channels: dict[str, Any] | None = None,
        actions: dict[str, str] | None = None,
        routing: dict[str, Any] | None = None,
        defaults: dict[str, Any] | None = None,
    ) -> None:
        self._data: dict[str, Any] = {"alerts": [], "ml_alerts": [], "slos": []}
        if defaults:
            self._data["defaults"] = dict(defaults)
        if channels:
            self._data["channels"] = dict(channels)
        if actions:
            self._data["actions"] = {name: {"url": url} for name, url in actions.items()}
        if routing:
            self._data["routing"] = dict(routing)
        self._spec = parse_spec(self._data)

    @classmethod
    def from_file(cls, path: str | Path) -> AlertManager:
        data = yaml.safe_load(Path(path).read_text()) or {}
        am = cls()
        am._apply(data)
        return am

    def create_alert(
        self,
        name: str,
        condition: str | None = None,
        *,
        expr: str | None = None,
        for_: str | None = None,
        severity: str | None = None,
        channels: list[str] | None = None,
        actions: list[str] | None = None,
        tenants: str | list[str] | None = None,
        summary: str | None = None,
        description: str | None = None,
        runbook_url: str | None = None,
        labels: dict[str, str] | None = None,
        test: dict[str, Any] | None = None,
    ) -> Spec:
        """A threshold alert, e.g. ``create_alert("HighErrors", "error_rate > 0.05", severity="critical")``."""
        entry = _entry(
            name=name,
            condition=condition,
            expr=expr,
            severity=severity,
            channels=channels,
            actions=actions,
            tenants=tenants,
            summary=summary,
            description=description,
            runbook_url=runbook_url,
            labels=labels,
            test=test,
        )
        if for_ is not None:
            entry["for"] = for_
        return self._add("alerts", entry)

    def create_ml_alert(
        self,
        name: str,
        model: str,
        threshold: float | None = None,
        sensitivity: str = "medium",
        **options: Any,
    ) -> Spec:
        """An alert on the anomaly sidecar's score for indicator ``model``; ``for`` follows sensitivity.

        Without ``threshold`` the spec's default applies: the detector's medium alarm threshold."""
        if "for_" in options:
            options["for"] = options.pop("for_")
        entry = _entry(name=name, model=model, threshold=threshold, sensitivity=sensitivity, **options)
        return self._add("ml_alerts", entry)

    def create_slo(
        self, name: str, objective: float, indicator: dict[str, Any], period: str = "30d", **options: Any
    ) -> Spec:
        """An SLO with recording rules and page/ticket burn-rate alerts."""
        entry = _entry(name=name, objective=objective, indicator=indicator, period=period, **options)
        return self._add("slos", entry)

    def remove(self, name: str) -> Spec:
        """Drop an alert, ML alert or SLO by name."""
        data = copy.deepcopy(self._data)
        before = sum(len(data[k]) for k in ("alerts", "ml_alerts", "slos"))
        for key in ("alerts", "ml_alerts", "slos"):
            data[key] = [a for a in data[key] if a.get("name") != name]
        if sum(len(data[k]) for k in ("alerts", "ml_alerts", "slos")) == before:
            raise alert_error(name, "name", "no such alert")
        return self._apply(data)

    def spec(self) -> Spec:
        return self._spec

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in copy.deepcopy(self._data).items() if v}

    def write(self, rules_dir: str | Path, alertmanager_dir: str | Path | None = None) -> list[Path]:
        """Generate the rule files (and the Alertmanager config when a directory is given)."""
        paths = write_rules(self._spec, Path(rules_dir))
        if alertmanager_dir is not None:
            paths += write_alertmanager(self._spec, Path(alertmanager_dir))
        return paths

    def _add(self, section: str, entry: dict[str, Any]) -> Spec:
        data = copy.deepcopy(self._data)
        data[section].append(entry)
        return self._apply(data)

    def _apply(self, data: dict[str, Any]) -> Spec:
        full = {"alerts": [], "ml_alerts": [], "slos": [], **data}
        spec = parse_spec({k: v for k, v in full.items() if v or k in ("alerts", "ml_alerts", "slos")})
        self._data, self._spec = full, spec
        return spec


def _entry(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}
