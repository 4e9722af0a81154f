"""Run a real Celery worker (a subprocess) against Redis and the pytest database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

REDIS_URL = os.environ.get("RECSITE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def test_database_url() -> str:
    db = connection.settings_dict
    return f"postgresql://{db['USER'] or 'postgres'}@/{db['NAME']}?host={db['HOST']}"


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.exceptions.RedisError:
        return False


@contextmanager
def celery_worker(*, concurrency: int = 1, log: Path | None = None):
    """Start ``celery -A recsite worker`` on a private queue; point this process's Celery app at
    it; yield the Popen; stop the worker and restore the eager configuration afterwards."""
    from recsite.celery import app

    queue = f"test-{uuid.uuid4().hex[:10]}"
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="recsite.settings.base",
        DATABASE_URL=test_database_url(),
        REDIS_URL=REDIS_URL,
        CELERY_QUEUE=queue,
        RECOMMENDER_EVALUATE_ON_TRAIN="false",
    )
    out = open(log or os.devnull, "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "recsite",
            "worker",
            "-l",
            "info",
            "--concurrency",
            str(concurrency),
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"{queue}@%h",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    saved = {
        k: app.conf[k]
        for k in ("task_always_eager", "broker_url", "result_backend", "task_default_queue")
    }
    app.conf.update(
        task_always_eager=False,
        broker_url=REDIS_URL,
        result_backend=REDIS_URL,
        task_default_queue=queue,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            replies = app.control.ping(destination=[f"{queue}@{os.uname().nodename}"], timeout=1)
            if replies:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"celery worker exited with {proc.returncode}")
        else:
            raise RuntimeError("celery worker did not answer within 60 s")
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        app.conf.update(saved)
        out.close()
