"""The one HTTP layer of the bundle's apps (the exporter and the anomaly sidecar).

- ``web.auth``: API keys as FastAPI dependencies (``Authorization: Bearer <key>``), scopes, tenants;
- ``web.errors``: ``ApiError`` and its one JSON body ``{error, field, reason, detail, request_id}``,
  plus the handlers for ``ApiError`` and Starlette's 404/405, and ``redact``/``spec_error`` so that no
  answer echoes what the caller sent;
- ``web.validation``: FastAPI's ``RequestValidationError`` as that body (422 naming the field);
- ``web.context``: the request id, one access-log line per request and a JSON 500 instead of a traceback;
- ``web.install``: ``install(app)`` puts the handlers and middleware above on an app.

Routers live with their component (``exporters.app``, ``alert_rules.api``, ``grafana.api``,
``security.erasure``, ``anomaly_sidecar.app``) as module-level ``APIRouter``s and take keys and errors
from here. This package imports only the kernel, the conventions and ``security`` (keys, audit).
"""
