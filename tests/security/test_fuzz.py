"""Hostile input against the running servers: schemathesis reads ``/openapi.json`` from the real exporter
and the real sidecar processes (with a real Prometheus behind them) and sends generated valid and invalid
requests to every operation, each with an admin key, a tenant key and an invalid key. Then every
documented path gets every HTTP method with a junk body. No answer may be a 5xx or carry a traceback, and
neither process may log one. The number of requests is printed (``pytest -s``).
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from tenantpulse.alert_rules.store import AlertStore
from tests.support.exporter import Exporter
from tests.support.ports import free_port
from tests.support.prometheus import Prometheus
from tests.support.sidecar import Sidecar

pytestmark = pytest.mark.integration

EXAMPLES = 20  # per operation; each example is sent with three keys
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
SENT: Counter[str] = Counter()
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("fuzz")
    seed = {
        "defaults": {"runbook_base": "https://rb.example"},
        "alerts": [{"name": "HighErrors", "condition": "error_rate > 0.05", "severity": "critical"}],
    }
    spec, rules = work / "alerts.yaml", work / "rules"
    spec.write_text(yaml.safe_dump(seed))
    AlertStore(spec, rules)._apply(seed)
    sidecar_port, prom_port = free_port(), free_port()
    (work / "sidecar.key").write_text("sidecar-test-admin")
    exporter = Exporter(
        work / "exporter",
        extra_args=[
            "--alerts-spec", str(spec), "--rules-out", str(rules),
            "--prometheus-url", f"http://127.0.0.1:{prom_port}",
            "--sidecar-url", f"http://127.0.0.1:{sidecar_port}", "--sidecar-key-file", str(work / "sidecar.key"),
            "--rate-limit", "1000000",
        ],
    ).start()  # fmt: skip
    prom = Prometheus(work, [exporter.scrape_config()], scrape_interval="250ms")  # short erasure waits
    prom.port, prom.url = prom_port, f"http://127.0.0.1:{prom_port}"
    prom.start()
    sidecar = Sidecar(work / "sidecar", prom.url, port=sidecar_port, extra_args=["--backfill", "10s"]).start()
    try:
        yield {"exporter": exporter, "sidecar": sidecar}
    finally:
        sidecar.stop()
        prom.stop()
        exporter.stop()
        print(f"\nfuzzing: {sum(SENT.values())} requests ({dict(SENT)})")
        for name, log in (("exporter", exporter.log_path), ("sidecar", sidecar.log_path)):
            text = log.read_text(errors="replace")
            assert "Traceback" not in text and "unhandled error" not in text, (
                f"{name} logged a crash:\n{text}"
            )


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    if not isinstance(value, list):
        return json.dumps([value]).encode()
    return "\n".join(json.dumps(item) for item in value).encode()


def check(response: requests.Response, where: str) -> None:
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:500]}"
    assert "Traceback" not in response.text, f"{where}: traceback in the answer"


@pytest.mark.parametrize("server", ["exporter", "sidecar"])
def test_generated_requests_never_break_the_server(stack: dict[str, Any], server: str) -> None:
    """Every operation, schema-valid and schema-invalid data, each case sent with three keys."""
    proc = stack[server]
    schema = schemathesis.openapi.from_url(f"{proc.url}/openapi.json")
    keys = (("admin", proc.keys["admin"]), ("tenant", proc.keys["t1"]), ("invalid", "not-a-key"))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5
    for operation in operations:
        fuzz(operation, GenerationMode.POSITIVE, keys, server)
        with contextlib.suppress(Unsatisfiable):  # nothing here can be made schema-invalid (e.g. /healthz)
            fuzz(operation, GenerationMode.NEGATIVE, keys, server)


def fuzz(operation: Any, mode: GenerationMode, keys: tuple[tuple[str, str], ...], server: str) -> None:
    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case: schemathesis.Case) -> None:
        for name, token in keys:
            response = case.call(headers={"Authorization": f"Bearer {token}"}, timeout=30)
            SENT[server] += 1
            check(response, f"{case.method} {case.formatted_path} ({mode}) with the {name} key")

    send()


@pytest.mark.parametrize("server", ["exporter", "sidecar"])
def test_every_method_on_every_path(stack: dict[str, Any], server: str) -> None:
    """Methods the document does not list (405 naming the allowed ones) and junk bodies on those it does."""
    proc = stack[server]
    paths = requests.get(f"{proc.url}/openapi.json", timeout=10).json()["paths"]
    auth = {"Authorization": f"Bearer {proc.keys['admin']}"}
    for path in paths:
        url = proc.url + path.replace("{", "x").replace("}", "")  # a syntactically odd but routable id
        for method in METHODS:
            for body in (b"\x00\xff{", b'{"tenant_id": ' + b"9" * 5000 + b"}"):
                r = requests.request(method, url, data=body, headers=auth, timeout=30)
                SENT[f"{server}-methods"] += 1
                check(r, f"{method} {path}")
                if method.lower() not in paths[path] and method not in ("HEAD", "OPTIONS"):
                    assert r.status_code == 405, f"{method} {path}: {r.status_code}"
