"""Every error under ``/api/`` has the API's shape, whoever produced it.

DRF views answer their own errors as ``{"message", "extra"}``; this catches the rest: Django's
HTML pages for a request refused before any view runs (a bad Host header, a CSRF failure, an
exception in another middleware, a 500) and for a path no URL pattern matches. A body declared
larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is a 413 whatever its type, before anything reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

API_PREFIX = "/api/"


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").split(";", 1)[0].strip() == "application/json"


class ApiErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if (
            limit is not None
            and request.path_info.startswith(API_PREFIX)
            and _declared_length(request) > limit
        ):
            return JsonResponse({"message": "Request body too large.", "extra": {}}, status=413)
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path_info.startswith(API_PREFIX)
            or _is_json(response)
        ):
            return response
        try:
            message = HTTPStatus(response.status_code).phrase + "."
        except ValueError:
            message = "Error."
        replacement = JsonResponse({"message": message, "extra": {}}, status=response.status_code)
        for header in ("Allow", "Retry-After", "WWW-Authenticate", "X-Request-ID"):
            if header in response:
                replacement[header] = response[header]
        return replacement
