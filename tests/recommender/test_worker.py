"""A real Celery worker on Redis trains a version, and refreshes users after interactions."""

from __future__ import annotations

import time

import pytest

from recommender.models import ModelVersion
from tests.worker import celery_worker, redis_available

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def _wait_for(predicate, timeout: float = 180.0, interval: float = 0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out")


def test_worker_trains_and_activates_a_new_version(trained_model, django_db_blocker, tmp_path):
    assert redis_available(), "Redis on 127.0.0.1:6379 is needed (RECSITE_TEST_REDIS_URL)"
    log = tmp_path / "worker.log"
    with django_db_blocker.unblock(), celery_worker(log=log) as worker:
        old = ModelVersion.objects.get(status="active")
        # the real path: training_start commits the run and enqueues model_train_task to Redis
        done_cmd = worker.manage("train", "--enqueue", "--model", "wedlae")
        assert done_cmd.returncode == 0, done_cmd.stderr
        version = ModelVersion.objects.exclude(pk=old.pk).latest("created_at")
        seen_progress = set()

        def finished():
            v = ModelVersion.objects.get(pk=version.pk)
            seen_progress.add(round(v.progress, 2))
            # a run activates its version, then prunes and reports "done": wait for the report
            done = v.status == "failed" or (v.status == "active" and v.progress_message == "done")
            return v if done else None

        done = _wait_for(finished)
        assert done.status == "active", done.error
        assert done.task_id, "the Celery task id is recorded"
        assert done.claimed_by and ":" in done.claimed_by
        old.refresh_from_db()
        assert old.status == "retired"
        assert max(seen_progress) == 1.0
        # the same run delivered again is a no-op (idempotent task)
        result = worker.send("recommender.model_train_task", version.pk).get(timeout=60)
        assert result["status"] == "active" and result["version"] == version.pk
        assert ModelVersion.objects.filter(status="active").count() == 1
    text = log.read_text()
    assert "model_train_task" in text and "succeeded" in text
