"""Throttles: anonymous clients by IP, authenticated clients by user id, plus stricter scopes
(``throttle_scope`` on a view) for sign-up/token, chat messages and training runs.

DRF's classes bind the rate table at import time; these read it per request so the table can come
from the environment and be changed by tests (``settings.REST_FRAMEWORK``).
"""

from __future__ import annotations

from rest_framework import throttling
from rest_framework.settings import api_settings


class _LiveRates:
    def get_rate(self) -> str | None:  # type: ignore[override]
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)  # type: ignore[attr-defined]


class AnonThrottle(_LiveRates, throttling.AnonRateThrottle):
    pass


class UserThrottle(_LiveRates, throttling.UserRateThrottle):
    pass


class ScopedThrottle(_LiveRates, throttling.ScopedRateThrottle):
    """Applies only to views with a ``throttle_scope``; keyed by user id, else by IP."""
