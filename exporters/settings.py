"""What the exporter process is configured with, checked once at startup.

Everything a user can get wrong here (a missing file, a zero rate) is refused with a ``UsageError``
before the server binds its port, so a bad flag is a message and exit code 2, never a half-started server.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tenantpulse.kernel.errors import UsageError
from tenantpulse.kernel.yamlfile import read_yaml

MetricsAuth = Literal["none", "required"]
EXPORTER_AUDIT_LOG = "exporter-audit.jsonl"  # default audit log name, beside --alerts-spec (the sidecar's
# is sidecar-audit.jsonl: two servers never share one chain by default)


@dataclass(frozen=True)
class ExporterSettings:
    """Exporter configuration. ``api_keys_file`` is the YAML keys file read by ``security.keys.KeyRing``."""

    api_keys_file: Path
    pseudonym_keys: dict[str, bytes] = field(default_factory=dict)
    pseudonym_key_current: str = ""
    max_series_per_tenant: int = 10_000
    max_event_types_per_tenant: int = 50
    rate_limit: float = 5_000.0
    rate_burst: float | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    max_batch_events: int = 10_000
    metrics_auth: MetricsAuth = "none"
    system_metrics_interval: float = 5.0
    alerts_spec: Path | None = None  # the alert spec that /analytics/alerts edits (alert_rules.api)
    rules_out: Path | None = None  # where the generated rule files go (Prometheus's rule_files)
    prometheus_url: str | None = None  # asked to /-/reload after each accepted alert change
    alertmanager_out: Path | None = None  # where alertmanager.yml goes; channel changes need it
    alertmanager_url: str | None = None  # asked to /-/reload after each accepted channel change
    sidecar_url: str | None = None  # asked to erase a tenant too (security.erasure)
    sidecar_key_file: Path | None = None  # an admin key for the sidecar, read at each erasure
    audit_log: Path | None = None  # hash-chained audit log of state changes (security.audit_http)
    redis_url: str | None = None  # state shared by several replicas (exporters.redis_state); None: in memory
    redis_cluster: bool = False  # redis_url is a seed node of a Redis Cluster

    def __post_init__(self) -> None:
        for name in (
            "max_series_per_tenant",
            "max_event_types_per_tenant",
            "max_body_bytes",
            "max_batch_events",
        ):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
        if not self.rate_limit > 0:
            raise UsageError("--rate-limit must be a positive number of events per second")
        if self.rate_burst is not None and not self.rate_burst >= 1:
            raise UsageError("--rate-burst must be at least 1 event")
        if (self.alerts_spec is None) != (self.rules_out is None):
            raise UsageError("--alerts-spec and --rules-out go together")
        if self.alertmanager_out is not None and self.alerts_spec is None:
            raise UsageError("--alertmanager-out needs --alerts-spec and --rules-out")
        if self.alertmanager_url is not None and self.alertmanager_out is None:
            raise UsageError("--alertmanager-url needs --alertmanager-out (the config it reloads)")
        if (self.sidecar_url is None) != (self.sidecar_key_file is None):
            raise UsageError("--sidecar-url and --sidecar-key-file go together")
        if self.metrics_auth not in ("none", "required"):
            raise UsageError("--metrics-auth must be 'none' or 'required'")
        self._check_redis()
        if not self.pseudonym_keys:
            # No key file: a random per-process key. Unique-user sketches live in memory only, so
            # nothing outlives the process that could need the same key again.
            object.__setattr__(self, "pseudonym_keys", {"ephemeral": secrets.token_bytes(32)})
            object.__setattr__(self, "pseudonym_key_current", "ephemeral")
        if self.pseudonym_key_current not in self.pseudonym_keys:
            raise UsageError(f"pseudonym key {self.pseudonym_key_current!r} is not among the keys given")

    def _check_redis(self) -> None:
        if self.redis_cluster and not self.redis_url:
            raise UsageError("--redis-cluster needs --redis-url (any node of the cluster)")
        if self.redis_url is None:
            return
        schemes = ("redis", "rediss") if self.redis_cluster else ("redis", "rediss", "unix")
        scheme, sep, rest = self.redis_url.partition("://")
        if not sep or scheme not in schemes or not rest:
            raise UsageError(f"--redis-url must be a {' or '.join(s + '://...' for s in schemes)} URL")
        if not self.pseudonym_keys:
            # A random per-process key would hash one user differently in each replica.
            raise UsageError("--redis-url needs --pseudonym-key-file: every replica must hash user ids alike")

    @property
    def burst(self) -> float:
        """Bucket size: by default two seconds' worth of events, and never below one full batch of 500."""
        return self.rate_burst if self.rate_burst is not None else max(2 * self.rate_limit, 500.0)


def load_pseudonym_keys(path: str | Path) -> tuple[dict[str, bytes], str]:
    """Read a pseudonym key file: ``{current: v2, keys: {v1: "<secret>", v2: "<secret>"}}``.

    Several keys let an operator rotate: new user ids hash with ``current``; the others stay known.
    Secrets are strings of at least 16 characters (e.g. ``tenantpulse keys state-key`` output).
    """
    doc = read_yaml(path, "pseudonym key file")
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), dict) or not doc["keys"]:
        raise UsageError(f"{path}: expected a mapping with a non-empty 'keys' mapping (id: secret)")
    keys: dict[str, bytes] = {}
    for key_id, secret in doc["keys"].items():
        if not isinstance(secret, str) or len(secret) < 16:
            raise UsageError(f"{path}: keys.{key_id} must be a string of at least 16 characters")
        keys[str(key_id)] = secret.encode()
    current = str(doc.get("current") or next(iter(keys)))
    if current not in keys:
        raise UsageError(f"{path}: current key {current!r} is not in 'keys'")
    return keys, current
