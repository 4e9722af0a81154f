"""Production settings: no DEBUG, secrets and hosts only from the environment, HTTPS behind a
proxy, JSON logs, and the cache (throttle counters, cached lists, LLM answers) in Redis so every
gunicorn process and every web container shares it.

``manage.py check --deploy`` is clean with these settings (tests/production/test_settings.py).
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DATABASES, LOG_LEVEL, REDIS_URL, env, env_bool, env_int, logging_config

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY or SECRET_KEY.startswith("dev-insecure"):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set in production.")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is too weak: use 50+ random characters, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
    )
if not env("DJANGO_ALLOWED_HOSTS"):
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must be set in production.")

# HTTPS is terminated by a proxy in front, which sets X-Forwarded-Proto (the probes in
# recsite/health.py are answered before the redirect: they come over plain HTTP).
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # whitenoise's compressed manifest storage; a file missing from the manifest is linked by its
    # plain name (and logged) rather than failing every page that links it with a 500
    "staticfiles": {"BACKEND": "recsite.staticfiles.ForgivingManifestStorage"},
}

# A database that does not answer fails the request (and /readyz) in seconds, not minutes.
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env_int("DB_CONNECT_TIMEOUT", 5))

# --- Cache: Redis when configured (per-process local memory otherwise) ---------------------------
CACHE_URL = env("CACHE_URL", REDIS_URL)
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", "recsite"),
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }

# --- Logs: JSON lines with the request id, an access-log line per request -----------------------
LOG_JSON = env_bool("LOG_JSON", True)
LOG_REQUESTS = env_bool("LOG_REQUESTS", True)
LOGGING = logging_config(json=LOG_JSON, level=LOG_LEVEL)
CELERY_WORKER_HIJACK_ROOT_LOGGER = not LOG_JSON
