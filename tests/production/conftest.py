"""Fixtures of the production tests: the chat's small catalog and fake LLM server, and helpers to
read metrics and build production environments for subprocesses.

Run with ``RECSITE_TEST_DB=prod`` so the test database does not collide with other runs.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import pytest
from django.conf import settings
from prometheus_client import REGISTRY

from tests.chat.conftest import alice, catalog, fake_llm  # noqa: F401 - fixtures

REPO = Path(settings.BASE_DIR)
PYTHON = sys.executable
REDIS_URL = os.environ.get("RECSITE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def sample(name: str, **labels: str) -> float:
    """The current value of a sample in this process's registry (0 when never counted)."""
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def production_env(**extra: str) -> dict[str, str]:
    """A realistic production environment for a subprocess (no database connection needed)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "REDIS_URL", "CACHE_", "LOG_", "METRICS_", "PROMETHEUS_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="recsite.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="recsite.example.org",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://recsite.example.org",
        DATABASE_URL="postgres://recsite:secret@db.invalid:5432/recsite",
        METRICS_TOKEN=secrets.token_urlsafe(24),
    )
    env.update(extra)
    return env


@pytest.fixture
def redis_client():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.RedisError:
        pytest.fail(f"Redis is needed at {REDIS_URL} (RECSITE_TEST_REDIS_URL)", pytrace=False)
    return client
