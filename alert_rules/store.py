"""The alert spec file as an editable store: every change is validated before anything in force moves.

Order of a change: new spec validated (``SpecError``) -> rules generated into a temp dir next to the
live ones -> ``promtool check rules`` (``CheckFailed``) -> files swapped in with ``os.replace`` ->
spec file replaced the same way -> Prometheus asked to reload. A refused change leaves both files
and Prometheus exactly as they were.
"""

from __future__ import annotations

import copy
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import requests
import yaml

from tenantpulse.alert_rules import checks
from tenantpulse.alert_rules.rules import RULES_FILE, write_rules
from tenantpulse.alert_rules.spec import parse_spec
from tenantpulse.kernel.errors import SpecError, UsageError
from tenantpulse.kernel.yamlfile import read_yaml

SECTIONS = {"threshold": "alerts", "anomaly": "ml_alerts"}
_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    pass


class ReloadFailed(RuntimeError):
    """The new rules are in place but Prometheus did not confirm the reload."""


def kind_of(entry: dict[str, Any]) -> str:
    """Anomaly alerts are the ones naming a ``model``; everything else is a threshold alert."""
    return "anomaly" if "model" in entry else "threshold"


class AlertStore:
    def __init__(self, spec_path: Path, rules_out: Path, prometheus_url: str | None = None) -> None:
        self.spec_path = Path(spec_path)
        self.rules_out = Path(rules_out)
        self.prometheus_url = prometheus_url.rstrip("/") if prometheus_url else None
        with _LOCKS_GUARD:
            self._lock = _LOCKS.setdefault(self.spec_path.resolve(), threading.Lock())

    def read(self) -> dict[str, Any]:
        if not self.spec_path.exists():
            return {}
        try:
            data = read_yaml(self.spec_path, "spec file") or {}
        except UsageError as exc:  # unreadable or not YAML: the message names the file
            raise SpecError(None, str(exc)) from None
        if not isinstance(data, dict):
            raise SpecError(None, "the spec file is not a mapping", str(self.spec_path))
        return data

    def entries(self) -> list[dict[str, Any]]:
        data = self.read()
        return [
            {"id": e.get("name"), "kind": kind, **e}
            for kind, key in SECTIONS.items()
            for e in data.get(key) or []
        ]

    def get(self, alert_id: str) -> dict[str, Any]:
        for e in self.entries():
            if e["id"] == alert_id:
                return e
        raise NotFound(alert_id)

    def add(self, entry: dict[str, Any]) -> bool:
        with self._lock:
            data = self.read()
            if any(e["id"] == entry.get("name") for e in self.entries()):
                raise Conflict(
                    f"alert {entry.get('name')!r} exists; PUT /analytics/alerts/{entry.get('name')} to change it"
                )
            new = copy.deepcopy(data)
            new.setdefault(SECTIONS[kind_of(entry)], []).append(entry)
            return self._apply(new)

    def replace(self, alert_id: str, entry: dict[str, Any]) -> bool:
        with self._lock:
            new = self._without(alert_id)
            new.setdefault(SECTIONS[kind_of(entry)], []).append({**entry, "name": alert_id})
            return self._apply(new)

    def delete(self, alert_id: str) -> bool:
        with self._lock:
            return self._apply(self._without(alert_id))

    def _without(self, alert_id: str) -> dict[str, Any]:
        data = copy.deepcopy(self.read())
        found = False
        for key in SECTIONS.values():
            kept = [e for e in data.get(key) or [] if e.get("name") != alert_id]
            found = found or len(kept) != len(data.get(key) or [])
            if key in data:
                data[key] = kept
        if not found:
            raise NotFound(alert_id)
        return data

    def _apply(self, data: dict[str, Any]) -> bool:
        """Validate, swap files in atomically, reload; returns whether Prometheus confirmed."""
        spec = parse_spec(data)
        self.rules_out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.rules_out, prefix=".pending-") as tmp:
            write_rules(spec, Path(tmp))  # also refuses alerts whose unit tests cannot be built
            checks.check_rules(Path(tmp) / RULES_FILE)
            # Only the rule file goes live: a rule_files glob such as DIR/*.yml must not pick up the
            # promtool test file or the PrometheusRule object.
            os.replace(Path(tmp) / RULES_FILE, self.rules_out / RULES_FILE)
        _atomic_write(self.spec_path, yaml.safe_dump(data, sort_keys=False, width=1000))
        return self.reload()

    def reload(self) -> bool:
        if self.prometheus_url is None:
            return False
        try:
            r = requests.post(f"{self.prometheus_url}/-/reload", timeout=10)
        except requests.RequestException as exc:
            raise ReloadFailed(f"cannot reach Prometheus at {self.prometheus_url}: {exc}") from None
        if not r.ok:
            raise ReloadFailed(f"Prometheus refused the reload ({r.status_code}): {r.text.strip()}")
        return True


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
