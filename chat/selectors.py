"""Reads of the chat: a user's conversations and messages (never another user's)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from catalog.models import Interaction, Item
from recommender.types import Filters
from recsite.exceptions import ApplicationError

from . import llm
from .models import ChatPreference, Conversation, Message


def conversation_list(*, user) -> QuerySet[Conversation]:  # noqa: ANN001
    return Conversation.objects.filter(user=user).order_by("-updated_at", "-id")


def conversation_get(*, user, conversation_id: int) -> Conversation:  # noqa: ANN001
    conversation = Conversation.objects.filter(pk=conversation_id, user=user).first()
    if conversation is None:
        raise ApplicationError("conversation not found", status=404)
    return conversation


def message_list(*, conversation: Conversation) -> QuerySet[Message]:
    return conversation.messages.select_related("reply").order_by("created_at", "id")


def message_get(*, user, message_id: int) -> Message:  # noqa: ANN001
    message = Message.objects.select_related("conversation").filter(pk=message_id).first()
    if message is None or message.conversation.user_id != user.pk:
        raise ApplicationError("message not found", status=404)
    return message


def prompt_history(*, user, dismissed: Iterable[int], limit: int = 10) -> list[tuple[Item, str]]:  # noqa: ANN001
    """The user's latest rated or liked visible items, newest first, each with how they
    showed it ("liked", "rated 4/5"): what the rerank prompt shows the LLM of the user."""
    rows = (
        Interaction.objects.filter(
            user=user,
            kind__in=[Interaction.Kind.RATING, Interaction.Kind.LIKE],
            item__is_hidden=False,
        )
        .exclude(item_id__in=dismissed)
        .select_related("item")
        .order_by("-timestamp", "-id")[: limit * 2]
    )
    out: dict[int, tuple[Item, str]] = {}
    for row in rows:
        if row.item_id in out:
            continue
        signal = "liked" if row.kind == Interaction.Kind.LIKE else f"rated {row.value:g}/5"
        out[row.item_id] = (row.item, signal)
        if len(out) >= limit:
            break
    return list(out.values())


def chat_preference_list(*, user) -> QuerySet[ChatPreference]:  # noqa: ANN001
    return ChatPreference.objects.filter(user=user).order_by("kind", "value")


def standing_exclusions(*, user) -> tuple[str, ...]:  # noqa: ANN001
    """Genres the user said "no more" of in chat, sorted."""
    if not getattr(user, "is_authenticated", False):
        return ()
    return tuple(
        ChatPreference.objects.filter(user=user, kind=ChatPreference.Kind.EXCLUDE_GENRE)
        .order_by("value")
        .values_list("value", flat=True)
    )


def filters_with_standing(
    *,
    user,  # noqa: ANN001
    filters: Filters | None = None,
    exclusions: tuple[str, ...] | None = None,
) -> Filters:
    """``filters`` plus the user's standing "no more X" preferences from chat, so the "For you"
    list and the API's recommendations honour them as the chat does. A genre the filters ask
    for explicitly is not left out. ``exclusions``: the user's, when the caller has read them."""
    filters = filters or Filters()
    wanted = {g.lower() for g in filters.genres}
    if exclusions is None:
        exclusions = standing_exclusions(user=user)
    extra = [g for g in exclusions if g.lower() not in wanted]
    if not extra:
        return filters
    return Filters(
        genres=filters.genres,
        exclude_genres=tuple(dict.fromkeys((*filters.exclude_genres, *extra))),
        year_min=filters.year_min,
        year_max=filters.year_max,
        exclude_ids=filters.exclude_ids,
        include_ids=filters.include_ids,
    )


def chat_mode() -> str:
    """'llm' when an OpenAI-compatible endpoint is configured, else 'builtin'."""
    return "llm" if llm.llm_configured() else "builtin"
