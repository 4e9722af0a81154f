"""Probes: ``/healthz`` (the process answers), ``/readyz`` (it can serve), and ``/metrics``.

:class:`ProbeMiddleware` answers these three paths itself, ahead of the host check and the HTTPS
redirect: orchestrators and Prometheus call them by container address over plain HTTP (Host
``web:8000`` or ``127.0.0.1:8000``), not through the public name behind the TLS proxy. Nothing
here builds a URL from the Host header, so skipping ``ALLOWED_HOSTS`` for them is safe.

``/readyz`` checks the database, Redis (the broker, and the cache when it is Redis) when
configured, and that a model version is active; 200 when all pass, else 503, the JSON body
naming what failed. Use it for a load balancer's readiness, ``/healthz`` for liveness (a
restart does not fix a database that is down).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)


class CheckFailed(Exception):
    """A readiness check's own, user-facing reason."""


def check_database() -> dict[str, Any]:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {}


def _redis_urls() -> dict[str, str]:
    urls: dict[str, str] = {}
    if getattr(settings, "REDIS_URL", None):
        urls["broker"] = settings.REDIS_URL
    cache = settings.CACHES.get("default", {})
    if cache.get("BACKEND", "").endswith("RedisCache"):
        location = cache["LOCATION"]
        urls["cache"] = location[0] if isinstance(location, list | tuple) else location
    return urls


def check_redis() -> dict[str, Any] | None:
    """None when no Redis is configured (tasks in-process, local-memory cache)."""
    from recsite.scrape import redis_client

    urls = _redis_urls()
    if not urls:
        return None
    for use, url in urls.items():
        if not redis_client(url).ping():
            raise CheckFailed(f"{use}: no PONG")
    return {"uses": sorted(urls)}


def check_model() -> dict[str, Any]:
    from recommender.models import ModelVersion

    active = (
        ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE)
        .values("id", "algorithm")
        .first()
    )
    if active is None:
        raise CheckFailed(
            "no active model version: train one (staff dashboard, API or manage.py train)"
        )
    return {"version": active["id"], "algorithm": active["algorithm"]}


CHECKS: dict[str, Callable[[], dict[str, Any] | None]] = {
    "database": check_database,
    "redis": check_redis,
    "model": check_model,
}


def readiness() -> tuple[bool, dict[str, Any]]:
    """Run every check: (all passed, {"status", "checks": {name: {...}}, "failed": [names]})."""
    checks: dict[str, Any] = {}
    failed: list[str] = []
    for name, check in CHECKS.items():
        if name == "model" and "database" in failed:
            checks[name] = {"ok": False, "error": "not checked: the database is unavailable"}
            failed.append(name)
            continue
        try:
            detail = check()
        except CheckFailed as exc:
            checks[name] = {"ok": False, "error": str(exc)}
            failed.append(name)
        except Exception as exc:  # noqa: BLE001 - a probe reports, it never raises
            # the class only: connection errors carry host names and addresses
            checks[name] = {"ok": False, "error": type(exc).__name__}
            failed.append(name)
            logger.warning("readiness check %s failed", name, exc_info=True)
        else:
            checks[name] = (
                {"ok": True, **detail}
                if detail is not None
                else {"ok": True, "skipped": "not configured"}
            )
    return not failed, {
        "status": "ready" if not failed else "unavailable",
        "checks": checks,
        "failed": failed,
    }


def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up and answering. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> HttpResponse:
    ok, body = readiness()
    response = JsonResponse(body, status=200 if ok else 503)
    response["Cache-Control"] = "no-store"
    # not an error of this request: Django would log every probe of a box without a model
    response._has_been_logged = True
    return response


def metrics(request: HttpRequest) -> HttpResponse:
    from recsite.scrape import metrics_view

    return metrics_view(request)


PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/readyz": readyz,
    "/metrics": metrics,
}


class ProbeMiddleware:
    """Answer the probe paths (GET/HEAD) before host validation and the HTTPS redirect."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = PROBES.get(request.path_info.rstrip("/") or "/")
        if view is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = JsonResponse({"message": "method not allowed", "extra": {}}, status=405)
            response["Allow"] = "GET, HEAD"
            return response
        return view(request)
