"""One error shape for every API failure: ``{"message": str, "extra": object}``.

``ApplicationError`` (expected failures raised by services and selectors) keeps its message,
extra and status. DRF's own exceptions keep their status; validation errors put the per-field
messages in ``extra.fields``. Input Django refuses before a view sees it is the client's fault: a
body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is a 413, any other suspicious request (too many fields,
a bad header) a 400, and a value PostgreSQL cannot store or compare (``DataError``: a NUL in text,
a number out of range) a 400. Anything unexpected is logged and answered with a generic 500 that
says nothing about the cause.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DataError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from recsite.exceptions import ApplicationError

logger = logging.getLogger(__name__)


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "request_too_large"


def error_body(message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"message": message, "extra": extra or {}}


def _flatten(detail: Any) -> Any:
    """DRF ErrorDetail trees -> plain strings, lists and dicts."""
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response(exc.as_dict(), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError("Malformed request.")
    elif isinstance(exc, DataError):
        logger.warning("API input the database refused: %s", exc)
        exc = exceptions.ValidationError({"non_field_errors": ["a value is out of range"]})
    if isinstance(exc, exceptions.APIException):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        set_rollback()
        if isinstance(exc, exceptions.ValidationError):
            detail = (
                exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
            )
            body = error_body("Invalid input.", {"fields": _flatten(detail)})
        elif isinstance(exc, exceptions.Throttled):
            body = error_body("Too many requests.", {"wait_seconds": int(exc.wait or 0)})
        else:
            body = error_body(
                str(exc.detail)
                if not isinstance(exc.detail, list | dict)
                else str(exc.default_detail)
            )
        return Response(body, status=exc.status_code, headers=headers)
    logger.exception("unhandled API error in %s", context.get("view").__class__.__name__)
    set_rollback()
    return Response(
        error_body("Internal server error."), status=status.HTTP_500_INTERNAL_SERVER_ERROR
    )
