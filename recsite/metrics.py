"""Prometheus metrics counted where the work happens; ``recsite/scrape.py`` serves them at
``/metrics`` with the state read from the database and Redis.

Two kinds:

* **Counted in the process that did the work** (histograms and counters below): HTTP requests,
  recommendation latency, LLM calls (latency, tokens, errors, retries, cache hits), chat turns,
  LLM fallbacks and guard repairs, Celery task durations. Gunicorn runs several processes: with
  ``PROMETHEUS_MULTIPROC_DIR`` set (the gunicorn config wipes it at start and marks dead workers),
  each process writes its values to files there and ``/metrics`` adds them up
  (prometheus_client's multiprocess mode). A Celery worker can serve its own task metrics on
  ``CELERY_METRICS_PORT`` (off by default).
* **Read on each scrape** (``recsite/scrape.py``): training runs and the served model from the
  ``ModelVersion`` rows (durations per stage, failures, progress, heartbeat age), and the Celery
  queue depth from Redis (``LLEN`` of the queue, unacked messages). These are facts of the worker
  and the broker, complete whichever process trained, with no need to scrape the worker.

``/metrics`` needs ``Authorization: Bearer $METRICS_TOKEN``. Without a token it is open only
with ``DEBUG`` on (development) and answers 404 otherwise: an IP allow-list would be fooled by
a reverse proxy on the same host (every request then comes from 127.0.0.1), and Prometheus sends
a bearer token natively (``authorization: {credentials: ...}`` in its scrape config).
"""

from __future__ import annotations

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
)

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
