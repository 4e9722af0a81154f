"""Listen to the catalog: a user's new interaction refreshes their vector (factor models)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver

from catalog.signals import interactions_changed, items_changed

from .models import ModelVersion
from .selectors import version_active
from .tasks import embeddings_refresh_task, item_embedding_refresh_task, user_refresh_task

logger = logging.getLogger(__name__)


@receiver(interactions_changed)
def refresh_user(sender, user_id: int, **kwargs) -> None:
    version = version_active()
    if version is not None and version.serving == ModelVersion.Serving.FACTORS:
        user_refresh_task.delay(user_id)


@receiver(items_changed)
def refresh_item_embeddings(sender, item_ids: list[int] | None = None, **kwargs) -> None:
    """Items were added or edited: re-embed them (the whole stale set after an import)."""
    if not settings.EMBEDDINGS_AUTO_REFRESH or settings.EMBEDDINGS_BACKEND == "none":
        return
    if item_ids is None:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            # No worker: embedding a whole catalog in-process would hold the importing command
            # (or request) for minutes. `manage.py embed` does it; `make run` starts it beside
            # the site.
            logger.info("items changed: run `manage.py embed` (or start a worker) to embed them")
            return
        transaction.on_commit(lambda: embeddings_refresh_task.delay())
    else:
        for item_id in item_ids:
            transaction.on_commit(lambda i=item_id: item_embedding_refresh_task.delay(i))
