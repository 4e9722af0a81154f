"""Long work started from a page runs beside the request, never inside it.

With a Celery worker (``REDIS_URL`` set) the task goes to the queue. Without one, Celery's eager
mode would run it inside the request that started it: the page would wait for the whole run and
show no progress. So a page's work then runs in a thread of the site's own process, which
writes its progress to the database as a worker would; the page polls it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections

from recsite.celery import app as celery_app

logger = logging.getLogger(__name__)
_running: list[threading.Thread] = []


def has_worker() -> bool:
    """Whether tasks go to a queue (a worker runs them) rather than run where they are sent."""
    return not celery_app.conf.task_always_eager


def run_in_background(work: Callable[..., Any], *args: Any, name: str) -> threading.Thread:
    """Run ``work(*args)`` in a daemon thread of this process; its database connections are
    closed when it ends (a thread's connections are its own)."""

    def run() -> None:
        try:
            work(*args)
        except Exception:  # the work records its own failure; this keeps the trace in the log
            logger.exception("background work %s failed", name)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    _running[:] = [t for t in _running if t.is_alive()] + [thread]
    return thread


def background_wait(timeout: float | None = None) -> bool:
    """Wait for this process's background work to end (a test server before it is torn down);
    True when none is left running."""
    for thread in list(_running):
        thread.join(timeout)
    return not any(t.is_alive() for t in _running)
