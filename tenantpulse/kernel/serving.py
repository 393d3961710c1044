"""Run an ASGI app with uvicorn: bound before the app starts, stalled requests cut off, optionally over
TLS (1.2 minimum; OpenSSL negotiates 1.3 when both can)."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from tenantpulse.kernel.errors import UsageError

REQUEST_TIMEOUT_ENV = "TENANTPULSE_REQUEST_TIMEOUT"
DEFAULT_REQUEST_TIMEOUT = 10.0
"""Seconds a client has to send a whole request (request line, headers and body), from its first byte."""

log = logging.getLogger("tenantpulse.serving")


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


def request_timeout() -> float:
    """Seconds from ``$TENANTPULSE_REQUEST_TIMEOUT``, else the default; a bad value is a UsageError."""
    text = os.environ.get(REQUEST_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_REQUEST_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"${REQUEST_TIMEOUT_ENV} must be a positive number of seconds, not {text!r}")
    return seconds


class RequestDeadline(H11Protocol):
    """uvicorn's h11 protocol with a deadline on the client's part of each request.

    uvicorn times out only idle keep-alive connections, and stops that timer at the first byte of the
    next request: a fresh connection, or a request whose headers or body never end, held its socket
    forever. This timer runs while the server waits for a request the client owes it (from the
    connection's or the request's first byte) and stops once the request is whole, so a slow handler is
    never cut off. When it fires the connection is closed; a handler reading the body sees the client
    disconnect.
    """

    request_timeout = DEFAULT_REQUEST_TIMEOUT
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start a pipelined request
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Between requests uvicorn's keep-alive timer runs instead (it stops at the next byte)."""
        owed = self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and self.timeout_keep_alive_task is None
        if not owed:
            self._stop()
        elif self._deadline is None:
            self._deadline = self.loop.call_later(self.request_timeout, self._expired)

    def _stop(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def deadline_protocol(seconds: float) -> type[RequestDeadline]:
    """The protocol class with this deadline (uvicorn makes one instance per connection itself)."""

    class Protocol(RequestDeadline):
        request_timeout = seconds

    return Protocol


def listen(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to every address ``host`` resolves to, as uvicorn would bind them, but before the
    app starts: a busy port or a bad address is one line and exit code 2, not a log line after startup."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    sockets: list[socket.socket] = []
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except (OSError, OverflowError) as exc:  # OverflowError: a port outside 0-65535
        for sock in sockets:
            sock.close()
        reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        raise UsageError(f"cannot listen on {where}: {reason[:1].lower()}{reason[1:]}") from None
    return sockets


# An ASGI application: awaited with (scope, receive, send). The components pass their FastAPI apps; the
# kernel names no web framework.
ASGIApp = Callable[..., Awaitable[None]]


def serve(
    app: ASGIApp,
    host: str,
    port: int,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    timeout: float | None = None,
) -> None:
    """Serve until interrupted; ``timeout``: see ``DEFAULT_REQUEST_TIMEOUT`` (default: ``request_timeout()``).

    Logging is ours (structlog), so uvicorn's own config is off."""
    check_tls_files(tls_cert, tls_key)
    seconds = request_timeout() if timeout is None else timeout
    sockets = listen(host, port)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        log_config=None,
        access_log=False,
        # h11, the protocol uvicorn picks here anyway (httptools is not a dependency), with the deadline.
        http=deadline_protocol(seconds),
        ws="none",  # no app of the bundle speaks WebSocket: an upgrade request is plain HTTP
        # Idle keep-alive connections (a scraper's, a TLS client's) must not hold a shutdown beyond the
        # pod's grace period: the sidecar saves its state after the server stops.
        timeout_graceful_shutdown=5,
    )
    config.load()
    if config.ssl is not None:
        config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    scheme = "https" if config.ssl is not None else "http"
    for sock in sockets:
        log.info("listening on %s://%s (requests time out after %gs)", scheme, _address(sock), seconds)
    uvicorn.Server(config).run(sockets=sockets)


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
