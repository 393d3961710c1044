"""Run an ASGI app with uvicorn, optionally over TLS (1.2 minimum; OpenSSL negotiates 1.3 when both can)."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvicorn

from tenantpulse.kernel.errors import UsageError


def check_tls_files(cert: str | None, key: str | None) -> None:
    """Both or neither, readable, and a matching pair: refused up front with a message, not a traceback."""
    if (cert is None) != (key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    if cert is None or key is None:
        return
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not Path(path).is_file():
            raise UsageError(f"{flag}: no such file {path}")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(f"--tls-cert/--tls-key: cannot load the pair: {exc}") from None


# An ASGI application: awaited with (scope, receive, send). The components pass their FastAPI apps; the
# kernel names no web framework.
ASGIApp = Callable[..., Awaitable[None]]


def serve(
    app: ASGIApp, host: str, port: int, tls_cert: str | None = None, tls_key: str | None = None
) -> None:
    """Serve until interrupted. Logging is ours (structlog), so uvicorn's own config is off."""
    check_tls_files(tls_cert, tls_key)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        log_config=None,
        access_log=False,
        # Idle keep-alive connections (a scraper's, a TLS client's) must not hold a shutdown beyond the
        # pod's grace period: the sidecar saves its state after the server stops.
        timeout_graceful_shutdown=5,
    )
    config.load()
    if config.ssl is not None:
        config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    uvicorn.Server(config).run()
