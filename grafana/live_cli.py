"""``tenantpulse dashboards serve`` (the live view) and ``tenantpulse dashboards snapshot`` (its PNGs),
added to the ``dashboards`` command of ``grafana.cli``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tenantpulse.kernel.errors import UsageError

DEFAULT_PORT = 9120


def _actions(root: Any) -> Any:
    """The subcommands of ``tenantpulse dashboards`` (registered by ``grafana.cli``, before this)."""
    dashboards = root.choices["dashboards"]
    return next(a for a in dashboards._actions if isinstance(a, argparse._SubParsersAction))


def register(root: Any, generate: Any) -> None:
    sub = _actions(root)
    p = sub.add_parser(
        "serve",
        help="serve the dashboards of a spec in a browser, with live data and auto-refresh",
        description="The generated dashboards drawn live (plotly) without Grafana. Viewers sign in with "
        "a read key from --keys (as the password of basic auth, any user name): a tenant key reads "
        "through the gateway (--gateway-url) and sees its own tenant only, an all-tenant key reads "
        "Prometheus directly. See docs/dashboards.md.",
    )
    p.add_argument(
        "--spec", type=Path, required=True, help="dashboards spec (YAML), e.g. examples/dashboards.yaml"
    )
    p.add_argument(
        "--keys", "--api-keys", dest="keys", type=Path, required=True, help="the exporter's keys file"
    )
    p.add_argument("--prometheus-url", required=True, help="Prometheus, for all-tenant keys")
    p.add_argument(
        "--gateway-url", help="the tenantpulse gateway, for tenant keys (without it they are refused)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to bind (1-65535)")
    p.add_argument(
        "--scrape-interval",
        default="15s",
        help="Prometheus's scrape interval ($__rate_interval is made of it)",
    )
    p.add_argument("--max-points", type=int, default=240, metavar="N", help="points per series of a panel")
    p.add_argument("--concurrency", type=int, default=4, metavar="N", help="queries in flight at once")
    p.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log level"
    )
    p.set_defaults(func=serve)

    s = sub.add_parser(
        "snapshot",
        help="write one PNG per dashboard of a running live view (headless Chromium)",
        description="Opens every dashboard of a running `tenantpulse dashboards serve` (or the gateway's "
        "/dashboards) in headless Chromium and writes DIR/<uid>.png once every panel is drawn.",
    )
    s.add_argument("--out", type=Path, required=True, help="directory for the PNGs")
    s.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}", help="the live view")
    s.add_argument("--key-file", type=Path, required=True, help="file holding the viewer's read key")
    s.add_argument("--tenant", help="the tenant to show (default: the dashboards' own choice)")
    s.add_argument("--range", dest="range_", metavar="DURATION", help="time range, e.g. 1h")
    s.add_argument("--uid", action="append", default=[], help="only this dashboard (repeatable)")
    s.add_argument("--chromium", help="the Chromium binary (default: /usr/bin/chromium)")
    s.add_argument("--width", type=int, default=1600, help="page width in pixels")
    s.set_defaults(func=snapshot)


def _http_url(flag: str, value: str | None) -> None:
    if value is None:
        return
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.netloc or url.query or url.fragment:
        raise UsageError(f"{flag} must be an http(s) URL such as http://127.0.0.1:9090, not {value!r}")


def _positive(flag: str, value: int) -> None:
    if value < 1:
        raise UsageError(f"{flag} must be at least 1, not {value}")


def serve(args: argparse.Namespace) -> int:
    from tenantpulse.grafana import generate
    from tenantpulse.grafana import spec as spec_module
    from tenantpulse.grafana.live.app import HttpReaders, create_live_app
    from tenantpulse.grafana.live.evaluate import Limits
    from tenantpulse.kernel.durations import parse_duration
    from tenantpulse.kernel.serving import serve as run_server
    from tenantpulse.otel.logging import configure_logging
    from tenantpulse.security.keys import KeyRing

    _http_url("--prometheus-url", args.prometheus_url)
    _http_url("--gateway-url", args.gateway_url)
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be 1-65535, not {args.port}")
    _positive("--max-points", args.max_points)
    _positive("--concurrency", args.concurrency)
    try:
        scrape = parse_duration(args.scrape_interval)
    except UsageError as exc:
        raise UsageError(f"--scrape-interval: {exc}") from None
    if not args.keys.is_file():
        raise UsageError(f"--keys: no such file {args.keys}")
    boards = generate.dashboards(spec_module.load(args.spec))
    ring = KeyRing.from_file(args.keys)
    limits = Limits(max_points=args.max_points, concurrency=args.concurrency, scrape_interval=scrape)
    app = create_live_app(boards, lambda: ring, HttpReaders(args.prometheus_url, args.gateway_url), limits)
    configure_logging(args.log_level, "json")
    print(f"live dashboards: http://{args.host}:{args.port}/ ({len(boards)} dashboards)", flush=True)
    run_server(app, args.host, args.port, None, None)
    return 0


def snapshot(args: argparse.Namespace) -> int:
    from tenantpulse.grafana.live.snapshot import snapshot as take

    _http_url("--url", args.url)
    _positive("--width", args.width)
    try:
        key = args.key_file.read_text().strip()
    except OSError as exc:
        raise UsageError(f"--key-file: cannot read {args.key_file}: {exc.strerror}") from None
    if not key:
        raise UsageError(f"--key-file: {args.key_file} is empty")
    variables = {"tenant": args.tenant} if args.tenant else {}
    written = take(args.url, key, args.out, variables, args.range_, args.uid, args.chromium, args.width)
    failed = [p for p, state in written if state != "ready"]
    for path, state in written:
        print(f"wrote {path}" + ("" if state == "ready" else " (the page shows an error)"))
    return 1 if failed else 0
