"""Rotate keys in a running server: on SIGHUP the exporter re-reads its API keys file and pseudonym key
file, the sidecar its API keys file.

* API keys: the new key ring replaces the old one at once (requests in flight finish with the old one).
  Rotating a client's key is: add the new key to the file, SIGHUP, move the client, remove the old
  key, SIGHUP.
* Pseudonym key: when the file names a new ``current`` version, the collector rotates to it; the old
  key keeps feeding the unique-user sketches for the longest window, so users seen before and after the
  switch count once (``exporters.pseudonym``). A version id is used once: changing the secret of an
  existing version is refused, because pseudonyms under one id must stay comparable.

A file that does not load keeps everything as it was and is logged; every reload is audited
(actor ``SIGHUP``). The work runs on a thread of its own, never inside the signal handler, so it can
take the collector's lock.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import structlog

from tenantpulse.exporters.settings import load_pseudonym_keys
from tenantpulse.kernel.errors import UsageError
from tenantpulse.security.keys import KeyRing

log = structlog.get_logger("tenantpulse.keys")


class KeyReloader:
    """Holds what was loaded so far and applies a reload to the app's state."""

    def __init__(self, app: Any, api_keys_file: Path, pseudonym_key_file: Path | None = None) -> None:
        """``pseudonym_key_file`` only for the exporter (its settings hold the keys loaded at start)."""
        self.app = app
        self.api_keys_file = api_keys_file
        self.pseudonym_key_file = pseudonym_key_file
        settings = getattr(app.state, "settings", None)
        self.current = getattr(settings, "pseudonym_key_current", "")
        self.secrets = dict(getattr(settings, "pseudonym_keys", {}))  # every version id used -> its secret
        self._lock = threading.Lock()

    def reload(self) -> dict[str, Any]:
        """Re-read both files; returns what changed. Raises nothing: failures are logged and audited."""
        with self._lock:
            try:
                result = self._reload()
            except UsageError as exc:
                log.error("key reload refused; the previous keys stay in force", error=str(exc))
                self._audit("failed", reason=str(exc))
                return {"reloaded": False, "error": str(exc)}
            log.info("keys reloaded", **result)
            self._audit("ok", **result)
            return {"reloaded": True, **result}

    def _reload(self) -> dict[str, Any]:
        ring = KeyRing.from_file(self.api_keys_file)
        rotate_to: tuple[str, bytes] | None = None
        if self.pseudonym_key_file is not None:
            keys, current = load_pseudonym_keys(self.pseudonym_key_file)
            known = self.secrets.get(current)
            if known is not None and known != keys[current]:
                raise UsageError(
                    f"{self.pseudonym_key_file}: the secret of pseudonym key {current!r} changed; "
                    "give a new secret a new version id"
                )
            if current != self.current:
                if known is not None:
                    raise UsageError(f"{self.pseudonym_key_file}: pseudonym key {current!r} was already used")
                rotate_to = (current, keys[current])
        # Everything loaded and checked: apply both, so a bad file never half-applies.
        self.app.state.keyring = ring
        if rotate_to is not None:
            self.app.state.collector.rotate_pseudonym_key(*rotate_to)
            self.current, self.secrets[rotate_to[0]] = rotate_to[0], rotate_to[1]
        return {
            "api_keys": len(ring),
            "pseudonym_key": self.current,
            "pseudonym_rotated": rotate_to is not None,
        }

    def _audit(self, outcome: str, **detail: Any) -> None:
        audit = getattr(self.app.state, "audit", None)
        if audit is None:
            return
        try:
            audit.record(actor="SIGHUP", action="keys.reload", outcome=outcome, target="keys", **detail)
        except OSError as exc:
            log.error("audit write failed", error=str(exc))

    def install(self) -> None:
        """Reload on SIGHUP (the handler only starts a thread)."""

        def on_hup(signum: int, frame: object) -> None:
            threading.Thread(target=self.reload, name="key-reload", daemon=True).start()

        signal.signal(signal.SIGHUP, on_hup)
