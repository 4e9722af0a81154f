"""The ``/metrics`` scrape: the counters of every process (``recsite/metrics.py``), then gauges
read from PostgreSQL and Redis at each scrape, and the bearer-token check.

It sits above the apps (it reads ``ModelVersion`` rows), beside the URL configuration, so the
counters in ``recsite/metrics.py`` stay importable from every app without a cycle.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from recsite.metrics import CONTENT_TYPE, process_registry

logger = logging.getLogger(__name__)

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
