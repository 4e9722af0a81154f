"""/healthz, /readyz and /metrics against the real test database and Redis."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from recommender.models import ModelVersion

from .conftest import PYTHON, REDIS_URL, REPO, sample

pytestmark = pytest.mark.django_db
TOKEN = "scrape-token-" + uuid.uuid4().hex


def scrape(client: Client) -> dict[tuple[str, tuple], float]:
    r = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert r.status_code == 200, r.content
    assert r["Content-Type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(r.content.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture(autouse=True)
def _no_versions(db):
    """Each test starts without model versions (inside its transaction: rolled back after),
    whatever a module before this one committed."""
    ModelVersion.objects.all().delete()


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN


# --- /healthz --------------------------------------------------------------------------------------


def test_healthz_answers_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert len(r["X-Request-ID"]) == 32


def test_probes_skip_host_validation_and_the_https_redirect(settings):
    """Orchestrators call web:8000 over plain HTTP; everything else keeps both protections."""
    settings.ALLOWED_HOSTS = ["recsite.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client(HTTP_HOST="web:8000")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code in (200, 503)
    assert client.get("/api/v1/ping/").status_code == 400  # DisallowedHost
    proxied = Client(HTTP_HOST="recsite.example.org")
    r = proxied.get("/api/v1/ping/")
    assert r.status_code == 301 and r["Location"].startswith("https://recsite.example.org/")
    assert proxied.get("/api/v1/ping/", HTTP_X_FORWARDED_PROTO="https").status_code == 200
    # a probe path is GET/HEAD only
    r = client.post("/healthz")
    assert r.status_code == 405 and r["Allow"] == "GET, HEAD"


# --- /readyz ---------------------------------------------------------------------------------------


def _active_version(**fields) -> ModelVersion:
    now = timezone.now()
    return ModelVersion.objects.create(
        algorithm="wedlae", status="active", activated_at=now, finished_at=now, **fields
    )


def test_readyz_names_a_missing_model(client):
    r = client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable" and body["failed"] == ["model"]
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["redis"] == {"ok": True, "skipped": "not configured"}
    assert "no active model version" in body["checks"]["model"]["error"]
    assert r["Cache-Control"] == "no-store"


def test_readyz_is_ready_with_database_redis_and_an_active_version(client, settings, redis_client):
    version = _active_version()
    settings.REDIS_URL = REDIS_URL
    r = client.get("/readyz")
    assert r.status_code == 200, r.content
    assert r.json() == {
        "status": "ready",
        "checks": {
            "database": {"ok": True},
            "redis": {"ok": True, "uses": ["broker"]},
            "model": {"ok": True, "version": version.pk, "algorithm": "wedlae"},
        },
        "failed": [],
    }


def test_readyz_names_redis_when_it_is_down(client, settings):
    _active_version()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    r = client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["failed"] == ["redis"]
    assert body["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}


def test_readyz_checks_a_redis_cache_too(client, settings):
    _active_version()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/1",
        }
    }
    body = client.get("/readyz").json()
    assert body["failed"] == ["redis"]


def test_readyz_names_the_database_when_it_is_down():
    """A process whose database does not answer: 503, database and model named."""
    code = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/readyz'); print(r.status_code, json.dumps(r.json()))"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "recsite.settings.base",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing",
        "LOG_LEVEL": "ERROR",
    }
    result = subprocess.run(
        [PYTHON, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().split(" ", 1)
    body = json.loads(body)
    assert status == "503"
    assert body["failed"] == ["database", "model"]
    assert body["checks"]["database"] == {"ok": False, "error": "OperationalError"}
    assert "127.0.0.1" not in result.stdout  # no addresses in the public body


# --- /metrics ---------------------------------------------------------------------------------------


def test_metrics_are_off_without_a_token_and_need_the_bearer_token(client, settings):
    settings.METRICS_TOKEN = None
    r = client.get("/metrics")
    assert r.status_code == 404 and "METRICS_TOKEN" in r.json()["message"]
    settings.DEBUG = True  # development: open
    assert client.get("/metrics").status_code == 200
    settings.DEBUG = False
    settings.METRICS_TOKEN = TOKEN
    r = client.get("/metrics")
    assert r.status_code == 401 and r["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {TOKEN}").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_training_state_is_read_from_the_versions_on_scrape(client, metrics_on):
    now = timezone.now()
    _active_version(
        timings={"read": 0.5, "fit": 12.25, "write": 1.5, "index": 0.0, "activate": 0.1, "total": 14.35}
    )  # fmt: skip
    failed_at = now - timedelta(minutes=5)
    ModelVersion.objects.create(algorithm="ease", status="failed", finished_at=failed_at)
    ModelVersion.objects.create(
        algorithm="ease", status="training", progress=0.4, heartbeat_at=now - timedelta(seconds=30)
    )
    m = scrape(client)
    assert m[("recsite_model_versions", (("status", "active"),))] == 1
    assert m[("recsite_model_versions", (("status", "failed"),))] == 1
    assert m[("recsite_model_versions", (("status", "training"),))] == 1
    assert m[("recsite_model_versions", (("status", "retired"),))] == 0
    fit = ("recsite_training_last_duration_seconds", (("algorithm", "wedlae"), ("stage", "fit")))
    assert m[fit] == 12.25
    total = (
        "recsite_training_last_duration_seconds",
        (("algorithm", "wedlae"), ("stage", "total")),
    )
    assert m[total] == 14.35
    assert m[("recsite_training_last_failure_timestamp_seconds", ())] == pytest.approx(
        failed_at.timestamp()
    )
    assert m[("recsite_training_running", ())] == 1
    assert m[("recsite_training_progress_ratio", ())] == 0.4
    assert 29 <= m[("recsite_training_heartbeat_age_seconds", ())] < 90
    active = ModelVersion.objects.get(status="active")
    assert m[("recsite_model_active_version", (("algorithm", "wedlae"),))] == active.pk
    assert m[("recsite_metrics_source_up", (("source", "database"),))] == 1
    # eager Celery (no REDIS_URL): no queue to read
    assert ("recsite_metrics_source_up", (("source", "redis"),)) not in m


def test_queue_depth_is_read_from_redis(client, metrics_on, settings, redis_client):
    prefix = f"test-prod-{uuid.uuid4().hex[:8]}:"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = REDIS_URL
    settings.CELERY_TASK_DEFAULT_QUEUE = "training"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": prefix}
    try:
        redis_client.lpush(prefix + "training", "m1", "m2", "m3")
        redis_client.lpush(prefix + "training\x06\x163", "m4", "m5")  # kombu's priority 3 list
        redis_client.lpush(prefix + "other", "x")  # another queue is not counted
        redis_client.hset(prefix + "unacked", mapping={"t1": "{}", "t2": "{}"})
        m = scrape(client)
        assert m[("recsite_celery_queue_length", (("queue", "training"),))] == 5
        assert m[("recsite_celery_unacked_messages", ())] == 2
        assert m[("recsite_metrics_source_up", (("source", "redis"),))] == 1
    finally:
        for key in redis_client.keys(prefix + "*"):
            redis_client.delete(key)


def test_a_source_that_is_down_does_not_fail_the_scrape(client, metrics_on, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    m = scrape(client)
    assert m[("recsite_metrics_source_up", (("source", "redis"),))] == 0
    assert m[("recsite_metrics_source_up", (("source", "database"),))] == 1


def test_requests_are_counted_by_view_and_status(client, metrics_on):
    labels = {"method": "GET", "view": "api:ping", "status": "200"}
    before = sample("recsite_http_requests_total", **labels)
    seconds_before = sample("recsite_http_request_duration_seconds_count", view="api:ping")
    for _ in range(3):
        assert client.get("/api/v1/ping/").status_code == 200
    assert sample("recsite_http_requests_total", **labels) == before + 3
    assert (
        sample("recsite_http_request_duration_seconds_count", view="api:ping") == seconds_before + 3
    )
    missing = {"method": "GET", "view": "unmatched", "status": "404"}
    before = sample("recsite_http_requests_total", **missing)
    client.get("/no-such-page-" + uuid.uuid4().hex)
    assert sample("recsite_http_requests_total", **missing) == before + 1
    # what a scrape shows is what was counted
    m = scrape(client)
    key = ("recsite_http_requests_total", tuple(sorted(labels.items())))
    assert m[key] == sample("recsite_http_requests_total", **labels)


def test_a_scrape_reads_a_few_aggregates(client, metrics_on, django_assert_max_num_queries):
    """Whatever the number of versions, a scrape costs the same handful of queries."""
    for _ in range(5):
        ModelVersion.objects.create(algorithm="ease", status="retired", finished_at=timezone.now())
    _active_version(timings={"total": 1.0})
    with django_assert_max_num_queries(5):
        m = scrape(client)
    assert m[("recsite_model_versions", (("status", "retired"),))] == 5
