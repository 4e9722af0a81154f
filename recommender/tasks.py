"""Celery entry points: thin wrappers that take ids and call the services."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from recsite import metrics

from . import services
from .embeddings import services as embedding_services

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="recommender.model_train_task", acks_late=True)
def model_train_task(self, version_id: int) -> dict:
    """Train run ``version_id``. Safe to run twice: a finished run is not run again, and a run
    whose worker died is taken over by the redelivered task."""

    def report(fraction: float, message: str) -> None:
        if self.request.id and not self.request.is_eager:
            self.update_state(state="PROGRESS", meta={"progress": fraction, "message": message})

    with metrics.task_timer("model_train"):
        try:
            version = services.model_train(version_id=version_id, on_progress=report)
        except SoftTimeLimitExceeded:
            services.versions_fail_stale()
            raise
    if version is None:
        return {"version": version_id, "status": "missing"}
    logger.info(
        "training run v%s: %s",
        version.pk,
        version.status,
        extra={"version": version.pk, "status": version.status, "timings": version.timings},
    )
    return {"version": version.pk, "status": version.status, "progress": version.progress}


@shared_task(name="recommender.model_train_scheduled_task")
def model_train_scheduled_task() -> dict:
    """Beat: retrain when there are interactions newer than the active version."""
    with metrics.task_timer("model_train_scheduled"):
        version = services.training_scheduled()
    return {"version": version.pk if version else None}


@shared_task(name="recommender.user_refresh_task", acks_late=True)
def user_refresh_task(user_id: int) -> bool:
    with metrics.task_timer("user_refresh"):
        return services.user_refresh(user_id=user_id)


@shared_task(bind=True, name="recommender.embeddings_refresh_task", acks_late=True)
def embeddings_refresh_task(self, item_ids: list[int] | None = None) -> dict:
    """Embed every item whose vector is missing or stale (safe to run twice), with progress."""

    def report(fraction: float, message: str) -> None:
        if self.request.id and not self.request.is_eager:
            self.update_state(state="PROGRESS", meta={"progress": fraction, "message": message})

    with metrics.task_timer("embeddings_refresh"):
        result = embedding_services.embeddings_refresh(item_ids=item_ids, on_progress=report)
    return {
        "backend": result.backend,
        "embedded": result.embedded,
        "fresh": result.fresh,
        "indexed": result.indexed,
        "items_per_second": round(result.items_per_second, 1),
    }


@shared_task(name="recommender.item_embedding_refresh_task", acks_late=True)
def item_embedding_refresh_task(item_id: int) -> bool:
    with metrics.task_timer("item_embedding_refresh"):
        return embedding_services.item_embedding_refresh(item_id=item_id)
