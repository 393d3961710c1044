"""The gateway's one client of the backend: a pooled ``requests`` session, a timeout, a size cap.

``Backend.call`` runs on a worker thread (``gateway.app`` awaits it there) and returns the backend's
answer as bytes, still compressed when the client and the backend both speak gzip: the gateway passes
answers through without parsing them. Backend-native tenant enforcement is added here, on top of the
PromQL rewrite: VictoriaMetrics gets ``extra_label=tenant=T`` on every call that selects series, and a
Mimir/Cortex backend gets the tenant as its org id header (``X-Scope-OrgID`` by default).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error

from tenantpulse.conventions.catalog import TENANT

BackendKind = Literal["prometheus", "victoriametrics", "mimir"]
BACKEND_KINDS: tuple[BackendKind, ...] = ("prometheus", "victoriametrics", "mimir")
DEFAULT_TENANT_HEADER = "X-Scope-OrgID"
CONNECT_TIMEOUT_SECONDS = 5.0
# Past the query timeout the backend itself was given, how long to wait for its own timeout answer.
READ_GRACE_SECONDS = 2.0
# Endpoints on which VictoriaMetrics applies ``extra_label`` (the ones that select series).
SELECTING = frozenset({"query", "query_range", "series", "labels", "label_values", "query_exemplars"})


class BackendError(Exception):
    """The backend could not be asked, or did not answer in time: ``status`` and ``error_type`` to answer."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str
    content_encoding: str | None
    seconds: float  # time the backend took (headers and body)


class Backend:
    """One backend URL (with any path prefix, e.g. Mimir's ``/prometheus``) and its connection pool."""

    def __init__(
        self,
        url: str,
        kind: BackendKind = "prometheus",
        timeout: float = 30.0,
        pool_size: int = 32,
        max_answer_bytes: int = 64 * 1024 * 1024,
        tenant_header: str = DEFAULT_TENANT_HEADER,
    ) -> None:
        self.base = url.rstrip("/")
        self.kind = kind
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
        self.tenant_header = tenant_header
        self.session = requests.Session()
        self.session.trust_env = False  # a proxy from the environment must not see tenant queries
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    @staticmethod
    def label_values_path(name: str) -> str:
        return f"/api/v1/label/{quote(name, safe='')}/values"

    def call(
        self,
        endpoint: str,
        method: str,
        path: str,
        params: list[tuple[str, str]],
        tenant: str | None,
        gzip: bool = False,
        org_id: str | None = None,
    ) -> Answer:
        """Ask the backend. ``tenant`` None: an all-tenant key, nothing added (``org_id`` is the client's
        own header, passed on for such keys)."""
        params = list(params)
        headers = {"Accept-Encoding": "gzip" if gzip else "identity", "Accept": "application/json"}
        if tenant is not None:
            if self.kind == "victoriametrics" and endpoint in SELECTING:
                params.append(("extra_label", f"{TENANT}={tenant}"))
            if self.kind == "mimir":
                headers[self.tenant_header] = tenant
        elif self.kind == "mimir" and org_id:
            headers[self.tenant_header] = org_id
        started = time.perf_counter()
        try:
            response = self.session.request(
                method,
                self.url(path),
                params=params if method == "GET" else None,
                data=params if method == "POST" else None,
                headers=headers,
                timeout=(min(CONNECT_TIMEOUT_SECONDS, self.timeout), self.timeout + READ_GRACE_SECONDS),
                stream=True,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise BackendError(504, "timeout", "the backend did not answer in time") from None
        except requests.RequestException as exc:
            raise BackendError(
                502, "unavailable", f"the backend is unreachable ({type(exc).__name__})"
            ) from None
        try:
            body = self._read(response)
        except (requests.RequestException, Urllib3Error, OSError):
            raise BackendError(504, "timeout", "the backend did not finish its answer in time") from None
        finally:
            response.close()
        return Answer(
            status=response.status_code,
            body=body,
            content_type=response.headers.get("Content-Type", ""),
            content_encoding=response.headers.get("Content-Encoding"),
            seconds=time.perf_counter() - started,
        )

    def _read(self, response: requests.Response) -> bytes:
        """The body as sent (not decompressed), refused beyond ``max_answer_bytes``."""
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_answer_bytes:
            raise BackendError(502, "unavailable", self._too_big())
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = response.raw.read(256 * 1024, decode_content=False)
            if not chunk:
                break
            size += len(chunk)
            if size > self.max_answer_bytes:
                raise BackendError(502, "unavailable", self._too_big())
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_big(self) -> str:
        return (
            f"the backend's answer is larger than the gateway's limit of {self.max_answer_bytes} bytes; "
            "narrow the query or its time range"
        )
