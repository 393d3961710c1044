"""``install(app)``: what every app of the bundle answers errors with, and the middleware around it."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenantpulse.security.audit_http import AuditTrail
from tenantpulse.web.context import RequestContext
from tenantpulse.web.errors import ApiError, api_error, http_error
from tenantpulse.web.validation import validation_error


def install(app: FastAPI) -> None:
    """The error handlers, the audit trail (to ``app.state.audit``) and the request context.

    ``RequestContext`` is added last, so it is outermost: audit entries carry its request id and an
    unhandled error anywhere inside becomes its JSON 500.
    """
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(AuditTrail)
    app.add_middleware(RequestContext)
