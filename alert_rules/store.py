"""The alert spec file as an editable store: every change is validated before anything in force moves.

Order of a change: new spec validated (``SpecError``) -> rules generated into a temp dir next to the
live ones -> ``promtool check rules`` (``CheckFailed``) -> for a change of channels, actions or routing,
``alertmanager.yml`` generated the same way -> ``amtool check-config`` (``ConfigRejected``) -> files
swapped in with ``os.replace`` -> spec file replaced the same way -> Prometheus (and Alertmanager)
asked to reload. A refused change leaves the files, Prometheus and Alertmanager exactly as they were.
Writes to one spec file are serialised (one lock per file), reloads included, so two changes never
interleave and the last reload always loads the last files.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
import yaml

from tenantpulse.alert_rules import checks
from tenantpulse.alert_rules.alertmanager import CONFIG_FILE, TEMPLATE_FILE, write_alertmanager
from tenantpulse.alert_rules.rules import RULES_FILE, write_rules
from tenantpulse.alert_rules.spec import TOP_LEVEL, Spec, parse_spec
from tenantpulse.kernel.errors import SpecError, UsageError
from tenantpulse.kernel.yamlfile import read_yaml

SECTIONS = {"threshold": "alerts", "anomaly": "ml_alerts"}
ROUTING_SECTIONS = ("channels", "actions", "routing")  # what Alertmanager's config is made from
_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    pass


class ReloadFailed(RuntimeError):
    """The new files are in place but Prometheus or Alertmanager did not confirm the reload."""


class ConfigRejected(RuntimeError):
    """``amtool check-config`` refused the Alertmanager config made from a routing change."""


class NoAlertmanager(RuntimeError):
    """A routing change needs ``alertmanager_out``: without it Alertmanager would keep the old receivers."""


def kind_of(entry: dict[str, Any]) -> str:
    """Anomaly alerts are the ones naming a ``model``; everything else is a threshold alert."""
    return "anomaly" if "model" in entry else "threshold"


class AlertStore:
    def __init__(
        self,
        spec_path: Path,
        rules_out: Path,
        prometheus_url: str | None = None,
        alertmanager_out: Path | None = None,
        alertmanager_url: str | None = None,
    ) -> None:
        self.spec_path = Path(spec_path)
        self.rules_out = Path(rules_out)
        self.prometheus_url = prometheus_url.rstrip("/") if prometheus_url else None
        self.alertmanager_out = None if alertmanager_out is None else Path(alertmanager_out)
        self.alertmanager_url = alertmanager_url.rstrip("/") if alertmanager_url else None
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

    def routing(self) -> dict[str, Any]:
        """The spec's channels, actions and routing, as the file has them."""
        data = self.read()
        return {key: data.get(key) or {} for key in ROUTING_SECTIONS}

    def set_routing(self, change: dict[str, Any]) -> dict[str, bool]:
        """Replace the given sections (``channels``, ``actions``, ``routing``); rules and Alertmanager config
        are regenerated together (an alert without ``channels`` goes to all of them) and both reload."""
        unknown = sorted(set(change) - set(ROUTING_SECTIONS))
        if unknown or not change:
            # Named only when it is a section of the spec: any other key is the caller's, not echoed.
            fld = next((k for k in unknown if k in TOP_LEVEL), "body") if unknown else ROUTING_SECTIONS[0]
            raise SpecError(fld, f"only {', '.join(ROUTING_SECTIONS)} can change here")
        if self.alertmanager_out is None:
            raise NoAlertmanager("start the exporter with --alertmanager-out DIR")
        with self._lock:
            new = {**copy.deepcopy(self.read()), **copy.deepcopy(change)}
            prometheus = self._apply(new, alertmanager=True)
            return {"prometheus": prometheus, "alertmanager": self.reload_alertmanager()}

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

    def _apply(self, data: dict[str, Any], alertmanager: bool = False) -> bool:
        """Validate, swap files in atomically, reload Prometheus; returns whether Prometheus confirmed.

        With ``alertmanager`` the Alertmanager config is regenerated and checked too, before any file moves.
        """
        spec = parse_spec(data)
        self.rules_out.mkdir(parents=True, exist_ok=True)
        with (
            tempfile.TemporaryDirectory(dir=self.rules_out, prefix=".pending-") as tmp,
            self._pending_alertmanager(spec, alertmanager) as am_tmp,
        ):
            write_rules(spec, Path(tmp))  # also refuses alerts whose unit tests cannot be built
            checks.check_rules(Path(tmp) / RULES_FILE)
            # Only the rule file goes live: a rule_files glob such as DIR/*.yml must not pick up the
            # promtool test file or the PrometheusRule object.
            os.replace(Path(tmp) / RULES_FILE, self.rules_out / RULES_FILE)
            if am_tmp is not None and self.alertmanager_out is not None:
                for name in (TEMPLATE_FILE, CONFIG_FILE):  # the template first: the config loads it
                    os.replace(am_tmp / name, self.alertmanager_out / name)
        _atomic_write(self.spec_path, yaml.safe_dump(data, sort_keys=False, width=1000))
        return self.reload()

    @contextlib.contextmanager
    def _pending_alertmanager(self, spec: Spec, wanted: bool) -> Iterator[Path | None]:
        """The new ``alertmanager.yml`` and template in a temp dir beside the live ones, amtool-checked."""
        if not wanted or self.alertmanager_out is None:
            yield None
            return
        self.alertmanager_out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.alertmanager_out, prefix=".pending-") as tmp:
            write_alertmanager(spec, Path(tmp))  # refuses a routing.default_receiver it cannot build
            try:
                checks.check_alertmanager(Path(tmp) / CONFIG_FILE)
            except checks.CheckFailed as exc:
                raise ConfigRejected(str(exc)) from None
            yield Path(tmp)

    def reload(self) -> bool:
        return _reload("Prometheus", self.prometheus_url)

    def reload_alertmanager(self) -> bool:
        return _reload("Alertmanager", self.alertmanager_url)


def _reload(what: str, url: str | None) -> bool:
    """POST ``/-/reload``; both servers keep their running config when the new one fails to load."""
    if url is None:
        return False
    try:
        r = requests.post(f"{url}/-/reload", timeout=10)
    except requests.RequestException as exc:
        raise ReloadFailed(f"cannot reach {what} at {url}: {exc}") from None
    if not r.ok:
        raise ReloadFailed(f"{what} refused the reload ({r.status_code}): {r.text.strip()}")
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
