"""Reads of the chat: a user's conversations and messages (never another user's)."""

from __future__ import annotations

from django.db.models import QuerySet

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


def message_get(*, user, message_id: int) -> Message:  # noqa: ANN001
    message = Message.objects.select_related("conversation").filter(pk=message_id).first()
    if message is None or message.conversation.user_id != user.pk:
        raise ApplicationError("message not found", status=404)
    return message


def standing_exclusions(*, user) -> tuple[str, ...]:  # noqa: ANN001
    """Genres the user said "no more" of (their standing preferences, kept by the catalog)."""
    return preference_exclusions(user=user)


def chat_mode() -> str:
    """'llm' when an OpenAI-compatible endpoint is configured, else 'builtin'."""
    return "llm" if llm.llm_configured() else "builtin"
