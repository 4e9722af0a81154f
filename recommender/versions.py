"""The served version: activating a trained one (retiring the previous, in one transaction) and
pruning old versions' rows, index and weights file. Training runs (``services.py``) call these;
so do the admin's "activate" action and the tests."""

from __future__ import annotations

from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from recsite.exceptions import ApplicationError

from . import storage
from .models import ModelVersion, VersionItem


def version_activate(*, version_id: int) -> ModelVersion:
    """Make ``version_id`` the served version, retiring the previous one, in one transaction."""
    with transaction.atomic():
        versions = {
            v.pk: v
            for v in ModelVersion.objects.select_for_update().filter(
                status=ModelVersion.Status.ACTIVE
            )
        }
        target = ModelVersion.objects.select_for_update().get(pk=version_id)
        if target.status == ModelVersion.Status.ACTIVE:
            return target
        if (
            target.status
            not in {
                ModelVersion.Status.TRAINING,
                ModelVersion.Status.READY,
                ModelVersion.Status.RETIRED,
            }
            or not VersionItem.objects.filter(version=target).exists()
        ):
            raise ApplicationError(f"version {version_id} has no trained model to activate")
        ModelVersion.objects.filter(pk__in=list(versions)).update(
            status=ModelVersion.Status.RETIRED
        )
        target.status = ModelVersion.Status.ACTIVE
        target.activated_at = timezone.now()
        target.save(update_fields=["status", "activated_at"])
    return target


def versions_prune(*, keep: int | None = None) -> int:
    """Delete the rows of old retired and failed versions, keeping the newest ``keep`` of each."""
    keep = keep if keep is not None else getattr(settings, "RECOMMENDER_KEEP_VERSIONS", 3)
    pruned = 0
    for status in (ModelVersion.Status.RETIRED, ModelVersion.Status.FAILED):
        old = list(
            ModelVersion.objects.filter(status=status)
            .order_by("-created_at", "-id")
            .values_list("pk", flat=True)[keep:]
        )
        for version_id in old:
            # One transaction per version (a savepoint inside a caller's): a version whose
            # deletion fails keeps its rows and index, and the file goes only once the rows'
            # deletion commits (a file deleted under a version that stays would silently switch
            # its serving to the top-K table).
            with transaction.atomic():
                deleted = ModelVersion.objects.filter(pk=version_id).delete()[1]
                storage.vector_index_drop(version_id=version_id)
                transaction.on_commit(partial(storage.dense_weights_delete, version_id=version_id))
            pruned += deleted.get("recommender.ModelVersion", 0)
    return pruned
