"""``tenantpulse gateway``: serve the Prometheus query API per tenant, in front of a backend."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tenantpulse.kernel.errors import UsageError

DEFAULT_PORT = 9110


def register(root: Any, generate: Any) -> None:
    p = root.add_parser(
        "gateway",
        help="serve the Prometheus query API with each tenant key restricted to its tenant's series",
        description="A Prometheus-HTTP-API server for Grafana's Prometheus datasource in front of "
        "Prometheus, VictoriaMetrics, Thanos or Mimir. Tenant read keys (the exporter's keys file) get "
        "answers computed from their tenant's series only; all-tenant keys pass through. See docs/gateway.md.",
    )
    p.add_argument(
        "--backend",
        required=True,
        metavar="URL",
        help="base URL of the backend's query API, with any path prefix (http://prometheus:9090, "
        "http://mimir/prometheus)",
    )
    p.add_argument(
        "--keys",
        "--api-keys",
        dest="api_keys",
        required=True,
        metavar="FILE",
        help="YAML keys file, the exporter's (see docs/exporter.md); re-read on SIGHUP",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to bind (1-65535)")
    p.add_argument(
        "--backend-kind",
        choices=["prometheus", "victoriametrics", "mimir"],
        default="prometheus",
        help="adds backend-native enforcement on top of the query rewrite: victoriametrics gets "
        "extra_label=tenant=T, mimir the tenant as its org id header (prometheus and thanos: none)",
    )
    p.add_argument(
        "--mimir-tenant-header",
        default="X-Scope-OrgID",
        metavar="NAME",
        help="with --backend-kind mimir: the header carrying the tenant id to the backend",
    )
    p.add_argument(
        "--timeout",
        default="30s",
        metavar="DURATION",
        help="query timeout given to the backend; the gateway answers 504 shortly after",
    )
    p.add_argument(
        "--max-query-length", type=int, default=16_384, metavar="N", help="characters of a query or match[]"
    )
    p.add_argument(
        "--max-points", type=int, default=11_000, metavar="N", help="points per series of a range query"
    )
    p.add_argument(
        "--max-concurrent-per-tenant",
        type=int,
        default=8,
        metavar="N",
        help="backend calls in flight per tenant; beyond: 429 with Retry-After",
    )
    p.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log level"
    )
    p.add_argument("--log-format", default="json", choices=["json", "console"], help="log line format")
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (with --tls-key)")
    p.add_argument("--tls-key", metavar="FILE", help="private key of --tls-cert")
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> Any:
    from tenantpulse.gateway.app import GatewaySettings
    from tenantpulse.kernel.durations import parse_duration

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be 1-65535, not {args.port}")
    backend = urlsplit(args.backend)
    if backend.scheme not in ("http", "https") or not backend.netloc or backend.query or backend.fragment:
        raise UsageError(
            f"--backend must be an http(s) URL such as http://127.0.0.1:9090, not {args.backend!r}"
        )
    keys_file = Path(args.api_keys)
    if not keys_file.is_file():
        raise UsageError(f"--keys: no such file {keys_file}")
    for flag, value in (
        ("--max-query-length", args.max_query_length),
        ("--max-points", args.max_points),
        ("--max-concurrent-per-tenant", args.max_concurrent_per_tenant),
    ):
        if value < 1:
            raise UsageError(f"{flag} must be at least 1, not {value}")
    header = args.mimir_tenant_header
    if not header or not all(ch.isalnum() or ch in "-_" for ch in header):
        raise UsageError(f"--mimir-tenant-header must be an HTTP header name, not {header!r}")
    try:
        timeout = parse_duration(args.timeout)
    except UsageError as exc:
        raise UsageError(f"--timeout: {exc}") from None
    return GatewaySettings(
        backend_url=args.backend,
        api_keys_file=keys_file,
        backend_kind=args.backend_kind,
        tenant_header=header,
        timeout=timeout,
        max_query_length=args.max_query_length,
        max_points=args.max_points,
        max_concurrent_per_tenant=args.max_concurrent_per_tenant,
    )


def run(args: argparse.Namespace) -> int:
    from tenantpulse.gateway.app import create_app  # the web stack loads only for this subcommand
    from tenantpulse.kernel.serving import check_tls_files, serve
    from tenantpulse.otel.logging import configure_logging
    from tenantpulse.security.key_reload import KeyReloader

    settings = settings_from_args(args)
    check_tls_files(args.tls_cert, args.tls_key)
    app = create_app(settings)  # reads the keys file: a bad one is a UsageError before binding
    KeyReloader(app, settings.api_keys_file).install()  # SIGHUP re-reads the keys file
    configure_logging(args.log_level, args.log_format)
    serve(app, args.host, args.port, args.tls_cert, args.tls_key)
    return 0
