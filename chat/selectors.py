"""Reads of the chat: a user's conversations and messages (never another user's)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from catalog.models import POSITIVE_KINDS, Interaction, Item
from catalog.selectors import preference_exclusions
from recsite.exceptions import ApplicationError

from . import llm
from .models import Conversation, Message


def conversation_list(*, user) -> QuerySet[Conversation]:  # noqa: ANN001
    return Conversation.objects.filter(user=user).order_by("-updated_at", "-id")


def conversation_get(*, user, conversation_id: int) -> Conversation:  # noqa: ANN001
    conversation = Conversation.objects.filter(pk=conversation_id, user=user).first()
    if conversation is None:
        raise ApplicationError("conversation not found", status=404)
    return conversation


def message_list(*, conversation: Conversation) -> QuerySet[Message]:
    return conversation.messages.select_related("reply").order_by("created_at", "id")


def user_texts(*, conversation: Conversation) -> list[str]:
    """What the user wrote in this conversation (their own words, which the chat may echo)."""
    return list(conversation.messages.filter(role=Message.Role.USER).values_list("text", flat=True))


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
            kind__in=POSITIVE_KINDS,
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


def standing_exclusions(*, user) -> tuple[str, ...]:  # noqa: ANN001
    """Genres the user said "no more" of (their standing preferences, kept by the catalog)."""
    return preference_exclusions(user=user)


def chat_mode() -> str:
    """'llm' when an OpenAI-compatible endpoint is configured, else 'builtin'."""
    return "llm" if llm.llm_configured() else "builtin"
