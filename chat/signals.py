"""Receivers of the chat app (connected in ``ChatConfig.ready``)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver

from catalog.models import Item
from catalog.signals import items_changed
from recommender.embeddings.text import PROFILE_KEY

from . import llm
from .tasks import item_profile_generate_task


@receiver(items_changed)
def profile_new_items(sender, item_ids: list[int] | None = None, **kwargs) -> None:  # noqa: ANN001
    """Items added or edited in the admin: write a profile for those that have none (per item
    only; a whole catalog is profiled on purpose, with ``manage.py profile_items``)."""
    if not item_ids or not llm.llm_configured() or not settings.CHAT_ITEM_PROFILES:
        return
    missing = Item.objects.filter(pk__in=item_ids).exclude(metadata__has_key=PROFILE_KEY)
    for item_id in missing.values_list("id", flat=True):
        transaction.on_commit(lambda i=item_id: item_profile_generate_task.delay(i))
