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
