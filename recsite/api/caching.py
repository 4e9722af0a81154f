"""HTTP caching for GET responses: an ETag from the body (If-None-Match -> 304) and a
Cache-Control header. Public catalog reads may be cached briefly by anyone; per-user reads are
``private`` and must be revalidated."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.middleware.http import ConditionalGetMiddleware
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.decorators import decorator_from_middleware

conditional_get = decorator_from_middleware(ConditionalGetMiddleware)


def cache_headers(*, public: bool, max_age: int = 0) -> Callable:
    """Decorate a DRF view method: ETag + conditional GET, and cache headers on success."""

    def decorator(method: Callable) -> Callable:
        @wraps(method)
        def wrapper(self, request, *args, **kwargs):
            response = method(self, request, *args, **kwargs)
            if response.status_code == 200:
                if public:
                    patch_cache_control(response, public=True, max_age=max_age)
                else:
                    patch_cache_control(response, private=True, no_cache=True)
                patch_vary_headers(response, ["Authorization", "Cookie"])
            return response

        return wrapper

    return decorator
