"""Reads from the catalog."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from .models import Interaction, Item


def item_list(*, include_hidden: bool = False) -> QuerySet[Item]:
    qs = Item.objects.all()
    return qs if include_hidden else qs.filter(is_hidden=False)


def item_genres() -> list[str]:
    """Every genre in the catalog, alphabetically."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT unnest(genres) AS g FROM catalog_item WHERE NOT is_hidden ORDER BY g"
        )
        return [row[0] for row in cursor.fetchall()]


def item_interaction_counts(*, items: QuerySet[Item]) -> QuerySet[Item]:
    return items.annotate(interaction_count=Count("interactions"))


def user_history(*, user, kinds: list[str] | None = None) -> QuerySet[Interaction]:
    qs = Interaction.objects.filter(user=user).select_related("item")
    if kinds:
        qs = qs.filter(kind__in=kinds)
    return qs.order_by("-timestamp", "-id")
