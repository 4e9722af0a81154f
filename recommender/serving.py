"""What every read of the recommender serves from: the active model version and the catalog's
fingerprint (shared by the requests of a process for a second), and the popular items that fill
a list when the model has too little to say."""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db.models.signals import post_save

from catalog.models import Item
from catalog.selectors import catalog_fingerprint, items_in_popularity_order
from catalog.signals import items_changed, items_curated

from . import storage
from .models import ModelVersion
from .types import Filters

__all__ = [
    "fill_scores",
    "popular_fill",
    "serving_state",
    "serving_state_forget",
    "version_active",
]


def version_active() -> ModelVersion | None:
    """The serving version (its pickled artifact, which only the fold-in reads, left deferred)."""
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).defer("artifact").first()


# The active version and the catalog's fingerprint, shared by every request of this process for
# API_SERVING_STATE_SECONDS (default 1 s): saves two queries per list, one of them a scan of the
# items. A change made in this process (curation, item edits, a version saved) clears it at
# once; other processes see a change within that time.
_serving: dict = {"expires": 0.0, "value": None}
_serving_lock = threading.Lock()


def serving_state() -> tuple[ModelVersion | None, str]:
    """(the active model version, the catalog's fingerprint), as of at most a second ago."""
    ttl = float(settings.API_SERVING_STATE_SECONDS)
    now = time.monotonic()
    with _serving_lock:
        if _serving["value"] is not None and now < _serving["expires"]:
            return _serving["value"]
    value = (version_active(), catalog_fingerprint())
    with _serving_lock:
        _serving.update(value=value, expires=now + ttl)
    return value


def serving_state_forget(**kwargs) -> None:  # noqa: ANN003 (signal receiver)
    with _serving_lock:
        _serving.update(value=None, expires=0.0)


items_curated.connect(serving_state_forget, dispatch_uid="recommender.serving.curated")
items_changed.connect(serving_state_forget, dispatch_uid="recommender.serving.changed")
post_save.connect(serving_state_forget, sender=ModelVersion, dispatch_uid="recommender.serving.ver")


def popular_fill(
    version: ModelVersion | None, filters: Filters, exclude: set[int], n: int
) -> list[Item]:
    """Most-interacted items passing the filters: the version's training counts first, then the
    catalog's live order for the items the version does not know."""
    qs = filters.apply(Item.objects.all()).exclude(pk__in=exclude)
    ids: list[int] = []
    if version is not None:
        ids = storage.popular_item_ids(version=version, items=qs, n=n)
    if len(ids) < n:
        known = set(ids)
        rest = (i for i in items_in_popularity_order(qs) if i not in known)
        ids += [i for _, i in zip(range(n - len(ids)), rest, strict=False)]
    items = Item.objects.in_bulk(ids)
    return [items[i] for i in ids if i in items]


def fill_scores(count: int, *, below: float | None = None) -> list[float]:
    """Scores of ``count`` popular items that fill a list, in popularity order.

    Alone in a list they score 0.5 / (position + 2). Under a list's scored entries (``below``:
    the weakest of them) they rank beneath all of them: a model's score for this user, however
    weak, says more than popularity does, which matters under a filter few items pass, where
    the CF matches are few and weak.
    """
    base = [0.5 / (pos + 2) for pos in range(count)]
    if below is None:
        return base
    if below > 0:
        return [below * b for b in base]
    return [below - 1.0 + b for b in base]
