"""A loopback HTTP proxy in front of a real server that remembers each request's path and headers.

Tests use it to see what a client really sent (e.g. the ``traceparent`` header the sidecar puts on
its Prometheus queries) while the answers still come from the real Prometheus behind it.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names


class RecordingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.seen: list[SeenRequest] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0)) or None
                headers = {k.lower(): v for k, v in self.headers.items()}
                proxy.seen.append(SeenRequest(self.command, self.path, headers))
                request = urllib.request.Request(
                    proxy.upstream + self.path,
                    data=body,
                    method=self.command,
                    headers={k: v for k, v in headers.items() if k not in HOP_BY_HOP},
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as resp:
                        status, reply, reply_headers = resp.status, resp.read(), resp.headers
                except urllib.error.HTTPError as err:
                    status, reply, reply_headers = err.code, err.read(), err.headers
                self.send_response(status)
                for k, v in reply_headers.items():
                    if k.lower() not in HOP_BY_HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_POST = _forward  # noqa: N815 - http.server's naming

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
