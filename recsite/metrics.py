"""Prometheus metrics, served at ``/metrics``.

Two kinds:

* **Counted in the process that did the work** (histograms and counters below): HTTP requests,
  recommendation latency, LLM calls (latency, tokens, errors, retries, cache hits), chat turns,
  LLM fallbacks and guard repairs, Celery task durations. Gunicorn runs several processes: with
  ``PROMETHEUS_MULTIPROC_DIR`` set (the gunicorn config wipes it at start and marks dead workers),
  each process writes its values to files there and ``/metrics`` adds them up
  (prometheus_client's multiprocess mode). A Celery worker can serve its own task metrics on
  ``CELERY_METRICS_PORT`` (off by default).
* **Read on each scrape** (:class:`StateCollector`): training runs and the served model from the
  ``ModelVersion`` rows (durations per stage, failures, progress, heartbeat age), and the Celery
  queue depth from Redis (``LLEN`` of the queue, unacked messages). These are facts of the worker
  and the broker, complete whichever process trained, with no need to scrape the worker.

``/metrics`` needs ``Authorization: Bearer $METRICS_TOKEN``. Without a token it is open only
with ``DEBUG`` on (development) and answers 404 otherwise: an IP allow-list would be fooled by
a reverse proxy on the same host (every request then comes from 127.0.0.1), and Prometheus sends
a bearer token natively (``authorization: {credentials: ...}`` in its scrape config).
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
if MULTIPROC_DIR:  # values are written there from the first metric defined below
    os.makedirs(MULTIPROC_DIR, exist_ok=True)

# the classic text format, which every Prometheus version reads
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SLOW = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 45.0, 90.0)
TASKS = (0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "recsite_http_requests", "HTTP requests answered", ["method", "view", "status"]
)
HTTP_DURATION = Histogram(
    "recsite_http_request_duration_seconds",
    "Time to answer an HTTP request (streamed bodies: until the last byte)",
    ["view"],
    buckets=FAST,
)
RECOMMENDATION_DURATION = Histogram(
    "recsite_recommendation_duration_seconds",
    "Time to compute one user's recommendation list with evidence (cache misses only)",
    buckets=FAST,
)
LLM_REQUESTS = Counter(
    "recsite_llm_requests",
    "LLM calls by outcome (ok, error, cached, cancelled)",
    ["mode", "outcome"],
)
LLM_DURATION = Histogram(
    "recsite_llm_request_duration_seconds",
    "Time spent waiting for the LLM per call, retries included (cache hits excluded)",
    ["mode"],
    buckets=SLOW,
)
LLM_TOKENS = Counter("recsite_llm_tokens", "LLM tokens (estimated when not reported)", ["type"])
LLM_ERRORS = Counter("recsite_llm_errors", "Failed LLM attempts by kind", ["kind"])
LLM_RETRIES = Counter("recsite_llm_retries", "LLM attempts retried", ["mode"])
LLM_FALLBACKS = Counter(
    "recsite_llm_fallbacks",
    "Chat turns where the LLM failed and the built-in path answered (understand: intent "
    "parser; rerank: candidate order + template reasons)",
    ["stage"],
)
CHAT_TURNS = Counter("recsite_chat_turns", "Chat turns answered", ["produced_by"])
GUARD_REPAIRS = Counter(
    "recsite_chat_guard_repairs", "Repairs the guard made to LLM answers, by kind", ["kind"]
)
TASK_DURATION = Histogram(
    "recsite_task_duration_seconds",
    "Celery task run time in the process that ran it, by outcome",
    ["task", "outcome"],
    buckets=TASKS,
)


# --- recording -------------------------------------------------------------------------------------


def http_request_observed(*, method: str, view: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method if method in METHODS else "other", view, str(status)).inc()
    HTTP_DURATION.labels(view).observe(seconds)


def llm_call_observed(*, mode: str, usage: Any, outcome: str) -> None:
    """One call of chat/llm.py (``usage`` is its LLMUsage): counts, latency, tokens, errors."""
    if usage.cache_hits and not usage.calls:
        outcome = "cached"
    LLM_REQUESTS.labels(mode, outcome).inc()
    if usage.calls:
        LLM_DURATION.labels(mode).observe(usage.latency_ms / 1000.0)
    if usage.prompt_tokens:
        LLM_TOKENS.labels("prompt").inc(usage.prompt_tokens)
    if usage.completion_tokens:
        LLM_TOKENS.labels("completion").inc(usage.completion_tokens)
    for kind in usage.errors:
        LLM_ERRORS.labels(kind).inc()
    if usage.retries:
        LLM_RETRIES.labels(mode).inc(usage.retries)


def chat_turn_observed(
    *, produced_by: str, guard_repairs: Mapping[str, int], fallbacks: Iterable[str]
) -> None:
    CHAT_TURNS.labels(produced_by).inc()
    for kind, count in guard_repairs.items():
        if count:
            GUARD_REPAIRS.labels(kind).inc(count)
    for stage in fallbacks:
        LLM_FALLBACKS.labels(stage).inc()


@contextmanager
def task_timer(task: str) -> Iterator[None]:
    """Time a Celery task body; the outcome is ``error`` when it raises."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        TASK_DURATION.labels(task, outcome).observe(time.perf_counter() - started)


# --- read on scrape --------------------------------------------------------------------------------

_redis_clients: dict[str, Any] = {}


def redis_client(url: str):  # -> redis.Redis
    """A client per URL with short timeouts (probes and scrapes must not hang)."""
    client = _redis_clients.get(url)
    if client is None:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        _redis_clients[url] = client
    return client


def celery_queue_keys(queue: str, transport_options: Mapping[str, Any]) -> list[str]:
    """The Redis lists kombu keeps a queue in: the queue itself and its priority lists."""
    prefix = transport_options.get("global_keyprefix", "") or ""
    sep = transport_options.get("sep", "\x06\x16")
    steps = transport_options.get("priority_steps", [0, 3, 6, 9])
    return [prefix + queue] + [f"{prefix}{queue}{sep}{p}" for p in steps if p]


class StateCollector:
    """Gauges read from PostgreSQL and Redis at each scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "recsite_metrics_source_up",
            "Whether a source of the scrape answered",
            labels=["source"],
        )
        try:
            yield from self._training()
            up.add_metric(["database"], 1)
        except Exception:  # noqa: BLE001 - a scrape must not fail because one source is down
            logger.warning("metrics: the database could not be read", exc_info=True)
            up.add_metric(["database"], 0)
        from django.conf import settings

        if not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", True):
            try:
                yield from self._queues(settings)
                up.add_metric(["redis"], 1)
            except Exception:  # noqa: BLE001
                logger.warning("metrics: the broker could not be read", exc_info=True)
                up.add_metric(["redis"], 0)
        yield up

    def _training(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Count, Max, Q

        from recommender.models import ModelVersion

        S = ModelVersion.Status
        ok = [S.ACTIVE, S.RETIRED, S.READY]
        counts = dict(
            ModelVersion.objects.order_by()
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        versions = GaugeMetricFamily(
            "recsite_model_versions",
            "Model versions (training runs) kept in the database, by status; failed and "
            "retired ones are pruned to RECOMMENDER_KEEP_VERSIONS",
            labels=["status"],
        )
        for status in S.values:
            versions.add_metric([status], counts.get(status, 0))
        yield versions

        stamps = ModelVersion.objects.aggregate(
            success=Max("finished_at", filter=Q(status__in=ok)),
            failure=Max("finished_at", filter=Q(status=S.FAILED)),
        )
        for key, name, text in [
            ("success", "recsite_training_last_success_timestamp_seconds", "End of the last successful training run"),
            ("failure", "recsite_training_last_failure_timestamp_seconds", "End of the last failed training run"),
        ]:  # fmt: skip
            if stamps[key] is not None:
                yield GaugeMetricFamily(name, text, value=stamps[key].timestamp())

        active = (
            ModelVersion.objects.filter(status=S.ACTIVE)
            .values("id", "algorithm", "activated_at")
            .first()
        )
        if active is not None:
            info = GaugeMetricFamily(
                "recsite_model_active_version",
                "Id of the served model version",
                labels=["algorithm"],
            )
            info.add_metric([active["algorithm"]], active["id"])
            yield info
            if active["activated_at"] is not None:
                yield GaugeMetricFamily(
                    "recsite_model_activated_timestamp_seconds",
                    "When the served version was activated",
                    value=active["activated_at"].timestamp(),
                )

        last = (
            ModelVersion.objects.filter(status__in=ok, finished_at__isnull=False)
            .exclude(timings={})
            .order_by("-finished_at")
            .values("id", "algorithm", "timings")
            .first()
        )
        if last is not None:
            durations = GaugeMetricFamily(
                "recsite_training_last_duration_seconds",
                "Stages of the last successful training run (read, fit, write, index, activate, total)",
                labels=["algorithm", "stage"],
            )
            for stage, seconds in sorted(last["timings"].items()):
                if isinstance(seconds, int | float):
                    durations.add_metric([last["algorithm"], stage], float(seconds))
            yield durations

        running = list(
            ModelVersion.objects.filter(status__in=[S.PENDING, S.TRAINING]).values(
                "progress", "heartbeat_at", "created_at"
            )
        )
        yield GaugeMetricFamily(
            "recsite_training_running", "Training runs pending or training", value=len(running)
        )
        if running:
            newest = max(running, key=lambda r: r["created_at"])
            yield GaugeMetricFamily(
                "recsite_training_progress_ratio",
                "Progress of the current training run (0-1)",
                value=newest["progress"],
            )
            beat = newest["heartbeat_at"] or newest["created_at"]
            yield GaugeMetricFamily(
                "recsite_training_heartbeat_age_seconds",
                "Seconds since the current training run last reported progress",
                value=max(0.0, time.time() - beat.timestamp()),
            )

    def _queues(self, settings: Any) -> Iterator[GaugeMetricFamily]:
        options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
        client = redis_client(settings.CELERY_BROKER_URL)
        queue = settings.CELERY_TASK_DEFAULT_QUEUE
        pipe = client.pipeline(transaction=False)
        for key in celery_queue_keys(queue, options):
            pipe.llen(key)
        pipe.hlen((options.get("global_keyprefix", "") or "") + "unacked")
        *lengths, unacked = pipe.execute()
        depth = GaugeMetricFamily(
            "recsite_celery_queue_length", "Tasks waiting in the Celery queue", labels=["queue"]
        )
        depth.add_metric([queue], sum(lengths))
        yield depth
        yield GaugeMetricFamily(
            "recsite_celery_unacked_messages",
            "Tasks delivered to a worker and not yet acknowledged (running, or lost with a "
            "killed worker until the visibility timeout redelivers them)",
            value=unacked,
        )


# --- exposition ------------------------------------------------------------------------------------


def process_registry() -> CollectorRegistry:
    """The metrics counted in processes: every process's files in multiprocess mode, else this
    process's own registry."""
    if MULTIPROC_DIR:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
        return registry
    return REGISTRY


def exposition() -> bytes:
    """The text of a scrape: process metrics, then the state read from the database and Redis."""
    state = CollectorRegistry()
    state.register(StateCollector())
    return generate_latest(process_registry()) + generate_latest(state)


def authorized(request: Any) -> tuple[bool, int, str]:
    """(allowed, status if not, message if not) for a request to /metrics."""
    from django.conf import settings

    token = getattr(settings, "METRICS_TOKEN", None)
    if not token:
        if settings.DEBUG:
            return True, 200, ""
        return False, 404, "metrics are off: set METRICS_TOKEN and scrape with that bearer token"
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        return False, 401, "a valid bearer token is required"
    return True, 200, ""


def metrics_view(request: Any):  # -> HttpResponse
    from django.http import HttpResponse, JsonResponse

    allowed, status, message = authorized(request)
    if not allowed:
        response = JsonResponse({"message": message, "extra": {}}, status=status)
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE)


# --- process bookkeeping ---------------------------------------------------------------------------


def multiprocess_dir_reset() -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR: call once before the processes that write it start."""
    if not MULTIPROC_DIR:
        return
    os.makedirs(MULTIPROC_DIR, exist_ok=True)
    for name in os.listdir(MULTIPROC_DIR):
        if name.endswith(".db"):
            os.unlink(os.path.join(MULTIPROC_DIR, name))


def process_dead(pid: int) -> None:
    if MULTIPROC_DIR:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, MULTIPROC_DIR)


def worker_metrics_serve(port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104
    """A Celery worker's own /metrics (task durations), on a port of its container."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=addr, registry=process_registry())
    logger.info("worker metrics on %s:%s", addr, port)
