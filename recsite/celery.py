"""The Celery app. ``celery -A recsite worker`` / ``celery -A recsite beat`` against REDIS_URL.

Without REDIS_URL the settings turn on ``task_always_eager``: ``.delay()`` runs the task in the
calling process, and this module logs that once when Django starts.
"""

from __future__ import annotations

import logging
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")

app = Celery("recsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger("recsite.celery")
_announced = False


def _observability() -> None:
    """Request ids into task headers and worker logs; a worker's own /metrics when
    CELERY_METRICS_PORT is set (recsite/metrics.py)."""
    from celery.signals import worker_init, worker_process_shutdown, worker_ready

    from recsite.observability import connect_celery

    connect_celery()

    @worker_init.connect(weak=False)
    def _metrics_reset(**_) -> None:
        from recsite import metrics

        metrics.multiprocess_dir_reset()  # before the pool's processes start writing

    @worker_ready.connect(weak=False)
    def _metrics_serve(**_) -> None:
        from django.conf import settings

        from recsite import metrics

        if settings.CELERY_METRICS_PORT:
            if not metrics.MULTIPROC_DIR:
                logger.warning(
                    "CELERY_METRICS_PORT without PROMETHEUS_MULTIPROC_DIR: only the main "
                    "process's metrics are served, not the pool's"
                )
            metrics.worker_metrics_serve(settings.CELERY_METRICS_PORT)

    @worker_process_shutdown.connect(weak=False)
    def _metrics_process_dead(pid: int | None = None, **_) -> None:
        from recsite import metrics

        metrics.process_dead(pid or os.getpid())


_observability()


def announce_mode() -> None:
    """Say once per process how tasks will run."""
    global _announced
    if _announced:
        return
    _announced = True
    from django.conf import settings

    if settings.CELERY_TASK_ALWAYS_EAGER:
        logger.info(
            "REDIS_URL is not set: Celery tasks run in-process (eager), no worker needed. "
            "Set REDIS_URL and start `celery -A recsite worker` to run them in the background."
        )
    else:
        logger.info("Celery broker: %s", settings.CELERY_BROKER_URL.split("@")[-1])
