"""``tenantpulse exporter``: serve the ingest API and ``/metrics`` with uvicorn."""

from __future__ import annotations

import argparse
import gc
from pathlib import Path
from typing import Any

from tenantpulse.exporters.settings import EXPORTER_AUDIT_LOG, ExporterSettings, load_pseudonym_keys
from tenantpulse.kernel.errors import UsageError


def register(root: Any, generate: Any) -> None:
    p = root.add_parser(
        "exporter",
        help="run the tenant exporter (ingest API + /metrics)",
        description="Serve POST /analytics/metrics, GET /analytics/metrics/{tenant}, /metrics, /healthz, "
        "/readyz and /openapi.json. --check validates the flags and files and exits without serving.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
    p.add_argument("--port", type=int, default=9464, help="port to bind (1-65535)")
    p.add_argument("--api-keys", required=True, metavar="FILE", help="YAML keys file (see docs/exporter.md)")
    p.add_argument(
        "--pseudonym-key-file",
        metavar="FILE",
        help="YAML {current: id, keys: {id: secret}} for hashing user ids (default: a random per-process key)",
    )
    p.add_argument(
        "--max-series-per-tenant",
        type=int,
        default=10_000,
        metavar="N",
        help="series a tenant may hold (then 422)",
    )
    p.add_argument(
        "--max-event-types-per-tenant",
        type=int,
        default=50,
        metavar="N",
        help="event types per tenant (then 422)",
    )
    p.add_argument("--rate-limit", type=float, default=5_000.0, metavar="EVENTS_PER_S", help="per tenant")
    p.add_argument(
        "--rate-burst",
        type=float,
        default=None,
        metavar="EVENTS",
        help="token bucket size per tenant (default: two seconds of --rate-limit, at least 500)",
    )
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=4 * 1024 * 1024,
        metavar="N",
        help="largest request body (then 413)",
    )
    p.add_argument("--max-batch-events", type=int, default=10_000, metavar="N", help="items per request")
    p.add_argument(
        "--metrics-auth",
        choices=["none", "required"],
        default="none",
        help="whether GET /metrics needs a read key (none: Prometheus scrapes without credentials)",
    )
    p.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log threshold"
    )
    p.add_argument(
        "--log-format",
        default="json",
        choices=["json", "console"],
        help="JSON lines, or readable lines for a terminal",
    )
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (with --tls-key)")
    p.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (with --tls-cert)")
    p.add_argument("--alerts-spec", metavar="FILE", type=Path, help="alert spec edited by /analytics/alerts")
    p.add_argument("--rules-out", metavar="DIR", type=Path, help="directory for the generated rule files")
    p.add_argument(
        "--prometheus-url",
        metavar="URL",
        help="Prometheus to reload after an alert change, and to erase a tenant from (needs its admin API)",
    )
    p.add_argument(
        "--alertmanager-out",
        metavar="DIR",
        type=Path,
        help="directory for the generated alertmanager.yml (Alertmanager's --config.file), rewritten by "
        "channel changes through /analytics/alert-routing",
    )
    p.add_argument("--alertmanager-url", metavar="URL", help="Alertmanager to reload after a channel change")
    p.add_argument("--sidecar-url", metavar="URL", help="anomaly sidecar to erase a tenant from too")
    p.add_argument("--sidecar-key-file", metavar="FILE", type=Path, help="admin key for --sidecar-url")
    p.add_argument(
        "--redis-url",
        metavar="URL",
        help="share tenant state with other replicas in Redis: redis://[:password@]host:port/db, rediss:// "
        "(TLS) or unix:///path (needs --pseudonym-key-file; default: one process, state in memory)",
    )
    p.add_argument(
        "--redis-cluster",
        action="store_true",
        help="--redis-url is one node of a Redis Cluster (the client discovers the others)",
    )
    p.add_argument(
        "--audit-log",
        metavar="FILE",
        type=Path,
        help="hash-chained audit log of state changes and refused keys "
        "(default: exporter-audit.jsonl beside --alerts-spec; none without it)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="check the flags, keys and spec files, print what was found, and exit",
    )
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> ExporterSettings:
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be 1-65535, not {args.port}")
    keys_file = Path(args.api_keys)
    if not keys_file.is_file():
        raise UsageError(f"--api-keys: no such file {keys_file}")
    pseudonym_keys: dict[str, bytes] = {}
    current = ""
    if args.pseudonym_key_file:
        pseudonym_keys, current = load_pseudonym_keys(args.pseudonym_key_file)
    if args.sidecar_key_file is not None and not args.sidecar_key_file.is_file():
        raise UsageError(f"--sidecar-key-file: no such file {args.sidecar_key_file}")
    audit_log = args.audit_log
    if audit_log is None and args.alerts_spec is not None:
        audit_log = args.alerts_spec.parent / EXPORTER_AUDIT_LOG
    return ExporterSettings(
        api_keys_file=keys_file,
        pseudonym_keys=pseudonym_keys,
        pseudonym_key_current=current,
        max_series_per_tenant=args.max_series_per_tenant,
        max_event_types_per_tenant=args.max_event_types_per_tenant,
        rate_limit=args.rate_limit,
        rate_burst=args.rate_burst,
        max_body_bytes=args.max_body_bytes,
        max_batch_events=args.max_batch_events,
        metrics_auth=args.metrics_auth,
        alerts_spec=args.alerts_spec,
        rules_out=args.rules_out,
        prometheus_url=args.prometheus_url,
        alertmanager_out=args.alertmanager_out,
        alertmanager_url=args.alertmanager_url,
        sidecar_url=args.sidecar_url,
        sidecar_key_file=args.sidecar_key_file,
        audit_log=audit_log,
        redis_url=args.redis_url,
        redis_cluster=args.redis_cluster,
    )


def checked(settings: ExporterSettings, args: argparse.Namespace) -> str:
    """``--check``: read every file the exporter would read at start, and say on one line what was found.
    No app is built: that would open the audit log (and repair a torn last line)."""
    from tenantpulse.alert_rules.spec import load_spec
    from tenantpulse.security.keys import KeyRing

    count = len(KeyRing.from_file(settings.api_keys_file))
    found = [f"{count} key{'' if count == 1 else 's'} in {settings.api_keys_file}"]
    if args.pseudonym_key_file:
        found.append(f"pseudonym keys {args.pseudonym_key_file} (current {settings.pseudonym_key_current})")
    if settings.alerts_spec is not None:
        if settings.alerts_spec.exists():
            alerts = len(load_spec(settings.alerts_spec).alert_names())
            found.append(f"alerts spec {settings.alerts_spec} ({alerts} alerts)")
        else:
            found.append(f"alerts spec {settings.alerts_spec} (new: the first alert added creates it)")
    if args.tls_cert:
        found.append(f"TLS pair {args.tls_cert}, {args.tls_key}")
    if settings.redis_url:
        from tenantpulse.exporters.redis_client import redacted

        kind = "Redis Cluster" if settings.redis_cluster else "Redis"
        found.append(f"shared state in {kind} {redacted(settings.redis_url)} (not contacted)")
    return "ok: " + ", ".join(found)


def run(args: argparse.Namespace) -> int:
    from tenantpulse.kernel.serving import check_tls_files, serve

    settings = settings_from_args(args)
    check_tls_files(args.tls_cert, args.tls_key)
    if args.check:
        print(checked(settings, args))
        return 0
    from tenantpulse.exporters.app import create_app  # the web stack loads only to serve
    from tenantpulse.otel.logging import configure_logging
    from tenantpulse.security.key_reload import KeyReloader

    app = create_app(settings)  # reads the keys file: a bad one is a UsageError before binding
    pseudonym_file = Path(args.pseudonym_key_file) if args.pseudonym_key_file else None
    KeyReloader(app, settings.api_keys_file, pseudonym_file).install()  # SIGHUP re-reads both key files
    configure_logging(args.log_level, args.log_format)
    # A 500-event batch allocates ~10 short-lived objects per event; with the default gen-0 threshold
    # (700) the collector would run a collection every ~70 events. Startup objects are frozen out of
    # future scans. Measured by benchmarks/bench_http_ingest.py.
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    serve(app, args.host, args.port, args.tls_cert, args.tls_key)
    return 0
