"""Run a real Celery worker (a subprocess) against Redis and the pytest database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

REDIS_URL = os.environ.get("RECSITE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def test_database_url() -> str:
    db = connection.settings_dict
    host = db["HOST"] or db.get("OPTIONS", {}).get("host", "")
    return f"postgresql://{db['USER'] or 'postgres'}@/{db['NAME']}?host={host}"


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.exceptions.RedisError:
        return False


@dataclass
class WorkerHandle:
    proc: subprocess.Popen
    env: dict[str, str]
    queue: str

    def manage(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def client(self):
        from celery import Celery

        return Celery("recsite-test-client", broker=REDIS_URL, backend=REDIS_URL)

    def send(self, name: str, *args):
        return self.client().send_task(name, args=list(args), queue=self.queue)


@contextmanager
def celery_worker(*, concurrency: int = 1, log: Path | None = None):
    """Start ``celery -A recsite worker`` on a private queue against Redis and the pytest
    database. Yields a handle: the environment a process needs to enqueue to it (run
    ``manage.py`` with it), and a fresh Celery client for sending tasks directly."""

    queue = f"test-{uuid.uuid4().hex[:10]}"
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="recsite.settings.base",
        DATABASE_URL=test_database_url(),
        REDIS_URL=REDIS_URL,
        CELERY_QUEUE=queue,
        RECOMMENDER_EVALUATE_ON_TRAIN="false",
    )
    log = log or Path(f"/tmp/recsite-worker-{queue}.log")
    out = open(log, "w")  # noqa: SIM115
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
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            text = log.read_text()
            if f"{queue}@" in text and " ready." in text:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"celery worker exited with {proc.returncode}: {text}")
            time.sleep(0.2)
        else:
            raise RuntimeError(f"celery worker not ready within 120 s: {log.read_text()}")
        yield WorkerHandle(proc=proc, env=env, queue=queue)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        out.close()
