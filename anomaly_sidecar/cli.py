"""``tenantpulse sidecar``: run the anomaly sidecar next to a Prometheus-compatible server."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from tenantpulse.anomaly_sidecar.defaults import DEFAULT_WARMUP
from tenantpulse.conventions import indicators
from tenantpulse.conventions.sensitivity import SENSITIVITY
from tenantpulse.kernel.durations import parse_duration
from tenantpulse.kernel.errors import UsageError

if TYPE_CHECKING:  # the service's modules load numpy, scipy and FastAPI: imported by run(), not --help
    from tenantpulse.anomaly_sidecar.reader import Auth
    from tenantpulse.anomaly_sidecar.service import ServiceConfig


def register(root: argparse._SubParsersAction, generate: argparse._SubParsersAction) -> None:
    p = root.add_parser(
        "sidecar",
        help="score tenant indicators for anomalies and forecast them, served as Prometheus metrics",
        description="Reads the watched indicators from a Prometheus-compatible API every --interval, "
        "serves anomaly scores, expected bands and forecasts on /metrics, and the ML API.",
    )
    p.add_argument(
        "--prometheus-url", required=True, help="base URL of the query API, e.g. http://localhost:9090"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
    p.add_argument("--port", type=int, default=9108, help="port to bind")
    p.add_argument(
        "--api-keys", metavar="FILE", help="keys file for /analytics/ml/* (without it they answer 401)"
    )
    p.add_argument("--state-file", metavar="FILE", help="where learned models are saved and restored from")
    p.add_argument(
        "--state-key-file",
        metavar="FILE",
        help="AES-256-GCM key for the state file (or $TENANTPULSE_STATE_KEY)",
    )
    p.add_argument(
        "--audit-log",
        metavar="FILE",
        help="hash-chained audit log of train/erase calls and refused keys "
        "(default: sidecar-audit.jsonl beside --state-file; none without it)",
    )
    p.add_argument("--state-every", default="60s", help="how often to save the state")
    p.add_argument("--interval", default="15s", help="cycle length")
    p.add_argument("--rate-window", default="5m", help="window of rate() in the indicators")
    p.add_argument("--backfill", default="1h", help="history learned at start")
    p.add_argument("--sensitivity", default="medium", help=f"one of {', '.join(SENSITIVITY)}")
    p.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="samples per series before alarms")
    p.add_argument(
        "--indicators",
        default=",".join(indicators.WATCHED),
        help="comma-separated indicators to watch",
    )
    p.add_argument("--shard-index", type=int, default=0, help="this replica's share of the series (0-based)")
    p.add_argument("--shard-count", type=int, default=1, help="replicas sharing the series by a stable hash")
    p.add_argument("--forecast-horizon", default="1h", help="how far ahead to forecast")
    p.add_argument("--forecast-every", default="5m", help="how often to refresh the forecasts")
    p.add_argument("--forecast-history", default="2d", help="history each forecast is fitted on")
    p.add_argument("--forecast-step", default="5m", help="sample spacing of that history")
    p.add_argument("--confidence", type=float, default=0.95, help="coverage of the forecast interval (0-1)")
    p.add_argument("--forget-after", default="1d", help="drop series absent this long")
    p.add_argument(
        "--latency-offset",
        default="30s",
        help="newest part of the backfill read by instant queries (VictoriaMetrics' -search.latencyOffset; 0: none)",
    )
    auth = p.add_mutually_exclusive_group()
    auth.add_argument("--bearer-token-file", metavar="FILE", help="bearer token for the query API")
    auth.add_argument("--basic-auth-file", metavar="FILE", help="'user:password' for the query API")
    p.add_argument("--org-id", help="X-Scope-OrgID header (Mimir/Cortex tenant)")
    p.add_argument("--query-timeout", default="10s", help="per query API request (then retried)")
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (with --tls-key)")
    p.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (with --tls-cert)")
    p.add_argument("--log-level", default="info", help="log threshold: debug, info, warning or error")
    p.add_argument(
        "--log-format",
        default="json",
        choices=("json", "console"),
        help="JSON lines, or readable lines for a terminal",
    )
    p.set_defaults(func=run)


def _read_secret(path: str, flag: str) -> str:
    try:
        text = Path(path).read_text().strip()
    except OSError as exc:
        raise UsageError(f"{flag}: cannot read {path}: {exc.strerror}") from None
    if not text:
        raise UsageError(f"{flag}: {path} is empty")
    return text


def build_auth(args: argparse.Namespace) -> Auth:
    from tenantpulse.anomaly_sidecar.reader import Auth

    basic = None
    if args.basic_auth_file:
        user, sep, password = _read_secret(args.basic_auth_file, "--basic-auth-file").partition(":")
        if not sep or not user:
            raise UsageError("--basic-auth-file must hold 'user:password'")
        basic = (user, password)
    token = _read_secret(args.bearer_token_file, "--bearer-token-file") if args.bearer_token_file else None
    return Auth(bearer_token=token, basic_auth=basic, org_id=args.org_id)


def build_config(args: argparse.Namespace) -> ServiceConfig:
    from tenantpulse.anomaly_sidecar import state as state_file
    from tenantpulse.anomaly_sidecar.registry import check_shard
    from tenantpulse.anomaly_sidecar.service import ServiceConfig
    from tenantpulse.security.state_crypto import StateCipher, load_key

    if args.sensitivity not in SENSITIVITY:
        raise UsageError(f"--sensitivity {args.sensitivity!r}: choose one of {', '.join(SENSITIVITY)}")
    if args.warmup < 0:
        raise UsageError("--warmup must be >= 0")
    if not 0 < args.confidence < 1:
        raise UsageError("--confidence must be between 0 and 1")
    check_shard(args.shard_index, args.shard_count)
    names = tuple(n.strip() for n in args.indicators.split(",") if n.strip())
    unknown = [n for n in names if n not in indicators.INDICATORS]
    if unknown or not names:
        raise UsageError(
            f"--indicators: unknown {unknown}; valid: {', '.join(sorted(indicators.INDICATORS))}"
        )
    key = load_key(args.state_key_file)
    return ServiceConfig(
        indicators=names,
        interval=parse_duration(args.interval),
        rate_window=parse_duration(args.rate_window),
        backfill=parse_duration(args.backfill),
        sensitivity=args.sensitivity,
        warmup=args.warmup,
        shard_index=args.shard_index,
        shard_count=args.shard_count,
        state_path=args.state_file,
        state_every=parse_duration(args.state_every),
        forecast_horizon=parse_duration(args.forecast_horizon),
        forecast_every=parse_duration(args.forecast_every),
        forecast_history=parse_duration(args.forecast_history),
        forecast_step=parse_duration(args.forecast_step),
        confidence=args.confidence,
        forget_after=parse_duration(args.forget_after),
        latency_offset=0.0
        if args.latency_offset.strip() in ("0", "0s")
        else parse_duration(args.latency_offset),
        state_codec=state_file.CipherCodec(StateCipher(key)) if key else state_file.PLAIN,
    )


def run(args: argparse.Namespace) -> int:
    from tenantpulse.anomaly_sidecar import state as state_file
    from tenantpulse.anomaly_sidecar.app import create_app
    from tenantpulse.anomaly_sidecar.reader import PrometheusReader
    from tenantpulse.anomaly_sidecar.service import SidecarService
    from tenantpulse.kernel.serving import serve
    from tenantpulse.otel.logging import configure_logging
    from tenantpulse.security.audit import AuditLog
    from tenantpulse.security.key_reload import KeyReloader
    from tenantpulse.security.keys import KeyRing

    configure_logging(args.log_level, args.log_format)
    config = build_config(args)
    keyring = KeyRing.from_file(args.api_keys) if args.api_keys else KeyRing([])
    reader = PrometheusReader(
        args.prometheus_url, auth=build_auth(args), timeout=parse_duration(args.query_timeout)
    )
    try:
        service = SidecarService(reader, config)
    except state_file.StateError as exc:
        raise UsageError(str(exc)) from None
    audit_path = args.audit_log or (
        Path(args.state_file).parent / "sidecar-audit.jsonl" if args.state_file else None
    )
    audit = AuditLog(audit_path) if audit_path else None
    app = create_app(service, keyring, audit=audit)
    if args.api_keys:
        KeyReloader(app, Path(args.api_keys)).install()  # SIGHUP re-reads the keys file
    serve(app, args.host, args.port, args.tls_cert, args.tls_key)
    return 0
