"""Schema-driven fuzzing of the exporter's own endpoints: no 5xx, answers match /openapi.json.

Schemathesis generates valid and invalid requests from the OpenAPI document (bodies, paths, query
strings, methods) and checks every answer: no server error, documented status codes and content
types, response bodies matching their schemas, schema-valid bodies accepted and invalid ones refused.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings

from tenantpulse.exporters.app import create_app
from tenantpulse.exporters.settings import ExporterSettings
from tests.support.exporter import write_keys_file

OWN_PATHS = [
    "/analytics/metrics",
    "/analytics/metrics/{tenant_id}",
    "/analytics/metrics/aggregated",
    "/metrics",
    "/healthz",
    "/readyz",
]

_workdir = Path(tempfile.mkdtemp(prefix="tp-fuzz-"))
KEYS = write_keys_file(_workdir / "keys.yaml", ["t1"])
APP = create_app(ExporterSettings(api_keys_file=_workdir / "keys.yaml", rate_limit=1e9))
APP.state.ready = True  # no lifespan under the ASGI transport; /readyz answers as a started app
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).include(path=OWN_PATHS)


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    """The schema describes NDJSON as an array; each item goes on its own line."""
    if not isinstance(value, list):  # a non-array has no NDJSON form: send a line the server must refuse
        return json.dumps([value]).encode()
    return "\n".join(json.dumps(item) for item in value).encode()


@schema.parametrize()
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_endpoints_follow_their_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {KEYS['admin']}"})
