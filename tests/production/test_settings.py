"""Production settings, loaded for real in subprocesses with a realistic environment:
``check --deploy`` is clean, bad secrets are refused with a clear message, the cache (throttle
counters included) is Redis shared by every process, and logs are JSON lines."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from .conftest import PYTHON, REDIS_URL, REPO, production_env


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def test_check_deploy_is_clean_with_production_settings():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_env(REDIS_URL=REDIS_URL)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr
    assert "security.W" not in result.stdout + result.stderr


def test_check_deploy_would_catch_an_insecure_setting():
    """The check above can fail: switching the HTTPS redirect off is reported."""
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING",
        env=production_env(DJANGO_SECURE_SSL_REDIRECT="false"),
    )  # fmt: skip
    assert result.returncode != 0
    assert "security.W008" in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY must be set in production."),
        ({"DJANGO_SECRET_KEY": "dev-insecure-key-change-me-in-production"}, "DJANGO_SECRET_KEY must be set"),
        ({"DJANGO_SECRET_KEY": "short-secret"}, "DJANGO_SECRET_KEY is too weak"),
        ({"DJANGO_SECRET_KEY": "a" * 60}, "DJANGO_SECRET_KEY is too weak"),
        ({"DJANGO_ALLOWED_HOSTS": ""}, "DJANGO_ALLOWED_HOSTS must be set in production."),
    ],
)  # fmt: skip
def test_production_refuses_missing_or_weak_secrets(env, message):
    result = manage("check", env=production_env(**env), timeout=60)
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {message}" in result.stderr


SHOW_CACHE = (
    "from django.core.cache import cache, caches; "
    "import sys; print(type(caches['default']).__name__); "
    "cache.set('probe', sys.argv[-1]) if sys.argv[-1] != '-' else None; print(cache.get('probe'))"
)


def _cache_in_process(env: dict[str, str], value: str) -> list[str]:
    result = subprocess.run(
        [PYTHON, "-c", "import django; django.setup(); " + SHOW_CACHE, value],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_cache_and_throttle_counters_are_shared_in_redis(redis_client):
    prefix = f"test-prod-{uuid.uuid4().hex[:8]}"
    env = production_env(REDIS_URL=REDIS_URL, CACHE_KEY_PREFIX=prefix)
    try:
        assert _cache_in_process(env, "written-by-one") == ["RedisCache", "written-by-one"]
        # another process (another gunicorn worker, another container) reads the same entry
        assert _cache_in_process(env, "-") == ["RedisCache", "written-by-one"]
        keys = [k.decode() for k in redis_client.keys(f"{prefix}:*")]
        assert keys == [f"{prefix}:1:probe"]
    finally:
        for key in redis_client.keys(f"{prefix}:*"):
            redis_client.delete(key)


def test_cache_url_overrides_redis_url_and_without_redis_it_is_per_process():
    env = production_env()
    assert _cache_in_process(env, "-") == ["LocMemCache", "None"]
    env = production_env(REDIS_URL="redis://127.0.0.1:1/0", CACHE_URL=REDIS_URL)
    result = subprocess.run(
        [PYTHON, "-c", "import django; django.setup(); from django.conf import settings; "
         "print(settings.CACHES['default']['LOCATION'], settings.CELERY_BROKER_URL)"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.stdout.split() == [REDIS_URL, "redis://127.0.0.1:1/0"], result.stderr


def test_production_logs_are_json_lines():
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('recsite.probe').warning('hello %s', 'world', extra={'version': 7})"
    )
    result = subprocess.run(
        [PYTHON, "-c", code], cwd=REPO, env=production_env(), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    probe = [r for r in lines if r["logger"] == "recsite.probe"]
    assert len(probe) == 1
    assert probe[0]["level"] == "WARNING" and probe[0]["message"] == "hello world"
    assert probe[0]["version"] == 7 and "request_id" not in probe[0]
    # every line of stderr is JSON (nothing printed around the logging configuration)
    assert all(line.startswith("{") for line in result.stderr.splitlines())
