"""A real Celery worker on Redis trains a version, and refreshes users after interactions."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_save

from catalog.models import Interaction, Item
from recommender import services
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


def test_a_version_is_never_committed_active_before_its_progress_is_complete(transactional_db):
    """Activation and the final progress are one commit: whatever commits the version as active
    commits its progress at 100 % too. Each commit that makes the version active is observed
    right after it (an on_commit callback registered when the row is saved as active)."""
    users = [get_user_model().objects.create_user(f"p{n}") for n in range(6)]
    items = [Item.objects.create(external_id=f"p{n}", title=f"P {n}") for n in range(8)]
    for n, user in enumerate(users):
        for item in items[n % 3 : n % 3 + 4]:
            Interaction.objects.create(user=user, item=item, kind="like")
    committed: list[tuple[str, float]] = []

    def on_save(sender, instance, **kwargs) -> None:
        if instance.status == ModelVersion.Status.ACTIVE:
            transaction.on_commit(
                lambda: committed.append(
                    ModelVersion.objects.values_list("status", "progress").get(pk=instance.pk)
                )
            )

    post_save.connect(on_save, sender=ModelVersion, dispatch_uid="test-activation-commit")
    try:
        version = services.training_start(algorithm="wedlae")
        services.model_train(version_id=version.pk)
    finally:
        post_save.disconnect(sender=ModelVersion, dispatch_uid="test-activation-commit")
    assert committed == [("active", 1.0)]


def test_worker_trains_and_activates_a_new_version(trained_model, django_db_blocker, tmp_path):
    assert redis_available(), "Redis on 127.0.0.1:6379 is needed (RECSITE_TEST_REDIS_URL)"
    log = tmp_path / "worker.log"
    with django_db_blocker.unblock(), celery_worker(log=log) as worker:
        old = ModelVersion.objects.get(status="active")
        # the real path: training_start commits the run and enqueues model_train_task to Redis
        done_cmd = worker.manage("train", "--enqueue", "--model", "wedlae")
        assert done_cmd.returncode == 0, done_cmd.stderr
        version = ModelVersion.objects.exclude(pk=old.pk).latest("created_at")
        seen: set[tuple[str, float]] = set()

        def finished():
            v = ModelVersion.objects.get(pk=version.pk)
            seen.add((v.status, round(v.progress, 2)))
            return v if v.status in ("active", "failed") else None

        done = _wait_for(finished)
        assert done.status == "active", done.error
        assert done.task_id, "the Celery task id is recorded"
        assert done.claimed_by and ":" in done.claimed_by
        old.refresh_from_db()
        assert old.status == "retired"
        # active and 100 % are one commit: a poll never sees the one without the other
        assert {progress for status, progress in seen if status == "active"} == {1.0}
        assert done.progress == 1.0
        # the same run delivered again is a no-op (idempotent task)
        result = worker.send("recommender.model_train_task", version.pk).get(timeout=60)
        assert result["status"] == "active" and result["version"] == version.pk
        assert ModelVersion.objects.filter(status="active").count() == 1
    text = log.read_text()
    assert "model_train_task" in text and "succeeded" in text
