"""Writes to the catalog: curation, interactions and standing preferences. Views, API, admin,
the chat and tasks call these."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from recsite.exceptions import ApplicationError

from .models import Interaction, Item, Preference
from .selectors import item_genres
from .signals import interactions_changed, items_changed, items_curated

CURATION_FLAGS = {"is_hidden", "is_featured", "is_pinned"}


def items_curate(*, items: QuerySet[Item] | Iterable[int], **changes: bool | float) -> int:
    """Set curation flags (is_hidden / is_featured / is_pinned: bool, boost: float) on many items.

    Returns the number of items changed. Serving reads these flags live, so the change shows in
    every list at once, without retraining.
    """
    unknown = set(changes) - CURATION_FLAGS - {"boost"}
    if unknown:
        raise ApplicationError(f"unknown curation field(s): {', '.join(sorted(unknown))}")
    if "boost" in changes:
        boost = float(changes["boost"])
        if not -10.0 <= boost <= 10.0:
            raise ApplicationError("boost must be between -10 and 10")
        changes["boost"] = boost
    qs = items if isinstance(items, QuerySet) else Item.objects.filter(pk__in=list(items))
    with transaction.atomic():
        ids = list(qs.values_list("pk", flat=True))
        changed = Item.objects.filter(pk__in=ids).update(**changes, updated_at=timezone.now())
        transaction.on_commit(lambda: items_curated.send(sender=Item, item_ids=ids))
    return changed


def item_curation_saved(*, item_id: int) -> None:
    """Announce (after commit) that one item's curation flags were edited in a form."""
    transaction.on_commit(lambda: items_curated.send(sender=Item, item_ids=[item_id]))


ITEM_TEXT_FIELDS = {"title", "year", "genres", "tags", "description", "metadata"}


def items_changed_announce(*, item_ids: list[int] | None) -> None:
    """Announce (after commit) that items were added or their text edited (None: any items)."""
    ids = None if item_ids is None else list(item_ids)
    transaction.on_commit(lambda: items_changed.send(sender=Item, item_ids=ids))


def interaction_record(
    *,
    user,
    item: Item,
    kind: str,
    value: float | None = None,
    source: str = Interaction.Source.WEB,
) -> Interaction:
    """Record (or replace) the user's signal of this kind on this item.

    A rating replaces the user's previous rating; liking removes a dismissal and dismissing
    removes a like, since they contradict each other.
    """
    if kind not in Interaction.Kind.values:
        raise ApplicationError(f"unknown interaction kind {kind!r}", {"field": "kind"})
    if source not in Interaction.Source.values:
        raise ApplicationError(f"unknown source {source!r}", {"field": "source"})
    if kind == Interaction.Kind.RATING:
        if value is None:
            raise ApplicationError("a rating needs a value between 0.5 and 5", {"field": "value"})
        value = round(float(value) * 2) / 2
        if not 0.5 <= value <= 5.0:
            raise ApplicationError("a rating must be between 0.5 and 5", {"field": "value"})
    else:
        value = None
    if item.is_hidden:
        raise ApplicationError("this item is not available", status=404)
    with transaction.atomic():
        interaction, _ = Interaction.objects.update_or_create(
            user=user,
            item=item,
            kind=kind,
            defaults={"value": value, "timestamp": timezone.now(), "source": source},
        )
        opposite = {Interaction.Kind.LIKE: Interaction.Kind.DISMISS}
        opposite[Interaction.Kind.DISMISS] = Interaction.Kind.LIKE
        if kind in opposite:
            Interaction.objects.filter(user=user, item=item, kind=opposite[kind]).delete()
        user_id = user.pk
        transaction.on_commit(
            lambda: interactions_changed.send(sender=Interaction, user_id=user_id)
        )
    return interaction


def interaction_delete(*, user, interaction_id: int) -> None:
    """Delete one of the user's own interactions (a foreign id is 'not found', never a leak)."""
    with transaction.atomic():
        deleted, _ = Interaction.objects.filter(pk=interaction_id, user=user).delete()
        if not deleted:
            raise ApplicationError("interaction not found", status=404)
        user_id = user.pk
        transaction.on_commit(
            lambda: interactions_changed.send(sender=Interaction, user_id=user_id)
        )


def favourites_record(*, user, items: Iterable[Item], source: str = Interaction.Source.WEB) -> int:
    """Onboarding (cold start): the user's picked favourites become ``like`` interactions."""
    count = 0
    with transaction.atomic():
        for item in items:
            interaction_record(user=user, item=item, kind=Interaction.Kind.LIKE, source=source)
            count += 1
    if not count:
        raise ApplicationError("pick at least one favourite", {"field": "items"})
    return count


def preference_create(
    *,
    user,  # noqa: ANN001
    kind: str,
    value: str,
    conversation_id: int | None = None,
) -> Preference:
    """State a standing preference on a genre of the catalog (matched case-blind); idempotent.
    ``conversation_id``: the chat conversation it was said in, if any."""
    if kind not in Preference.Kind.values:
        raise ApplicationError(f"unknown preference {kind!r}", {"field": "kind"})
    wanted = (value or "").strip().lower()
    genre = next((g for g in item_genres() if g.lower() == wanted), None)
    if genre is None:
        raise ApplicationError("not a genre of the catalog", {"field": "value"})
    preference, _ = Preference.objects.get_or_create(
        user=user, kind=kind, value=genre, defaults={"conversation_id": conversation_id}
    )
    return preference


def preference_delete(*, user, preference_id: int) -> None:  # noqa: ANN001
    """Forget one of the user's preferences (another user's id is "not found")."""
    deleted, _ = Preference.objects.filter(pk=preference_id, user=user).delete()
    if not deleted:
        raise ApplicationError("preference not found", status=404)
