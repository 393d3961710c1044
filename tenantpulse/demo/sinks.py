"""Local stand-ins for Slack and an SMTP relay: what Alertmanager sends lands here, for tests and the demo.

``WebhookSink`` is an HTTP server that records every JSON body (Slack's incoming-webhook format,
or Alertmanager's webhook format for actions); ``MailSink`` is an ``aiosmtpd`` SMTP server that
records every message. Both call an optional callback per delivery; standalone, they print one line each::

    python -m tenantpulse.demo.sinks --http-port 9099 --smtp-port 2525
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

log = structlog.get_logger("tenantpulse.sinks")


class WebhookSink:
    """Records JSON POSTs by path; ``url(path)`` is what goes into a Slack URL file or webhook_configs."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, on_payload: Callable[[str, Any], None] | None = None
    ) -> None:
        self.received: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    doc = json.loads(body)
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                with sink._lock:
                    sink.received.append((self.path, doc))
                if on_payload is not None:
                    on_payload(self.path, doc)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:  # quiet: structlog line above instead
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        bound, self.port = self._server.server_address[:2]
        self.host = bound if isinstance(bound, str) else bytes(bound).decode()  # str for an AF_INET socket
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "/slack") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def payloads(self, path: str | None = None) -> list[Any]:
        with self._lock:
            return [doc for p, doc in self.received if path is None or p == path]

    def start(self) -> WebhookSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, so only once started
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MailSink:
    """An SMTP server (aiosmtpd) that keeps every message; no auth, no TLS (loopback use only)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, on_message: Callable[[EmailMessage], None] | None = None
    ) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:  # noqa: N802
                msg = email.message_from_bytes(envelope.original_content or b"", policy=email.policy.default)
                with sink._lock:
                    sink.messages.append(msg)
                if on_message is not None:
                    on_message(msg)
                return "250 Message accepted"

        if port == 0:
            from socket import socket

            with socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.host, self.port = host, port
        self._controller = Controller(Handler(), hostname=host, port=port)

    @property
    def smarthost(self) -> str:
        return f"{self.host}:{self.port}"

    def received(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.messages)

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop(no_assert=True)  # also when never started

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def html_body(msg: EmailMessage) -> str:
    part = msg.get_body(("html", "plain"))
    return part.get_content() if part is not None else ""


def describe_payload(path: str, doc: Any) -> str:
    """One line for a received Slack message or Alertmanager webhook call."""
    if isinstance(doc, dict) and doc.get("attachments"):
        return f"slack {doc.get('channel', '')}: {doc['attachments'][0].get('title', '')}"
    if isinstance(doc, dict) and "alerts" in doc:
        tenants = sorted({a.get("labels", {}).get("tenant", "?") for a in doc["alerts"]})
        name = doc.get("groupLabels", {}).get("alertname", "?")
        return f"webhook {path}: {doc.get('status')} {name} tenant={','.join(tenants)}"
    return f"webhook {path}: {str(doc)[:200]}"


def describe_mail(msg: EmailMessage) -> str:
    return f"email to {msg['To']}: {msg['Subject']}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tenantpulse.demo.sinks", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--http-port", type=int, default=9099, help="Slack/webhook receiver port")
    p.add_argument("--smtp-port", type=int, default=2525)
    args = p.parse_args(argv)

    def show(line: str) -> None:
        print(line, flush=True)

    hook = WebhookSink(
        args.host, args.http_port, on_payload=lambda path, doc: show(describe_payload(path, doc))
    )
    mail = MailSink(args.host, args.smtp_port, on_message=lambda msg: show(describe_mail(msg)))
    with hook, mail:
        show(f"slack url: {hook.url('/slack')}  webhooks: {hook.url('/<action>')}  smtp: {mail.smarthost}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
