"""Celery entry points of the chat app: thin wrappers that take ids and call the services."""

from __future__ import annotations

from celery import shared_task

from . import profiles


@shared_task(name="chat.item_profile_generate_task", acks_late=True)
def item_profile_generate_task(item_id: int) -> bool:
    return profiles.item_profile_generate(item_id=item_id) is not None
