"""Writes of the chat: conversations, messages (each answered by the pipeline), feedback.

The API calls these too::

    conversation_create(*, user, title="") -> Conversation
    message_create(*, conversation, user, text) -> Message            # saved, waiting
    message_answer_stream(*, message, user) -> Iterator[ChatEvent]    # answers it, streaming
    message_post(*, conversation, user, text) -> ChatTurn             # both, not streaming
    message_post_stream(*, conversation, user, text) -> Iterator[ChatEvent]
    chat_feedback_record(*, user, item_id, kind, value=None) -> Interaction   # source "chat"
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db import transaction

from catalog.models import Interaction, Item
from catalog.services import interaction_record
from recsite.exceptions import ApplicationError

from .models import Conversation, Message
from .pipeline import ChatEvent, ChatTurn, turn_events

MAX_MESSAGE_CHARS = 1000


def conversation_create(*, user, title: str = "") -> Conversation:  # noqa: ANN001
    if not user.is_authenticated:
        raise ApplicationError("sign in to chat", status=403)
    return Conversation.objects.create(user=user, title=title[:200])


def message_create(*, conversation: Conversation, user, text: str) -> Message:  # noqa: ANN001
    """Save the user's message, waiting for an answer (``message_answer_stream``)."""
    if conversation.user_id != user.pk:
        raise ApplicationError("conversation not found", status=404)
    text = (text or "").strip()
    if not text:
        raise ApplicationError("say something first", {"field": "text"})
    if len(text) > MAX_MESSAGE_CHARS:
        raise ApplicationError(
            f"a message is at most {MAX_MESSAGE_CHARS} characters", {"field": "text"}
        )
    with transaction.atomic():
        message = Message.objects.create(
            conversation=conversation,
            role=Message.Role.USER,
            text=text,
            status=Message.Status.PENDING,
        )
        Conversation.objects.filter(pk=conversation.pk).update(updated_at=message.created_at)
    return message


def message_answer_stream(*, message: Message, user) -> Iterator[ChatEvent]:  # noqa: ANN001
    """Claim a waiting user message and answer it; raises ApplicationError if it is not waiting."""
    if message.conversation.user_id != user.pk or message.role != Message.Role.USER:
        raise ApplicationError("message not found", status=404)
    claimed = Message.objects.filter(pk=message.pk, status=Message.Status.PENDING).update(
        status=Message.Status.RUNNING
    )
    if not claimed:
        raise ApplicationError("this message is already answered", status=409)
    message.refresh_from_db()
    return turn_events(user_message=message, user=user)


def message_post_stream(*, conversation: Conversation, user, text: str) -> Iterator[ChatEvent]:  # noqa: ANN001
    message = message_create(conversation=conversation, user=user, text=text)
    return message_answer_stream(message=message, user=user)


def message_post(*, conversation: Conversation, user, text: str) -> ChatTurn:  # noqa: ANN001
    """Post a message and return the whole answered turn."""
    turn: ChatTurn | None = None
    for event in message_post_stream(conversation=conversation, user=user, text=text):
        if event.kind == "done":
            turn = event.turn
    assert turn is not None
    return turn


def chat_feedback_record(
    *, user, item_id: int, kind: str, value: float | None = None
) -> Interaction:  # noqa: ANN001
    """A rating / like / dismissal given on a chat card (stored with source "chat")."""
    item = Item.objects.filter(pk=item_id, is_hidden=False).first()
    if item is None:
        raise ApplicationError("this item is not available", status=404)
    if kind not in {Interaction.Kind.RATING, Interaction.Kind.LIKE, Interaction.Kind.DISMISS}:
        raise ApplicationError(f"unknown feedback {kind!r}", {"field": "kind"})
    return interaction_record(
        user=user, item=item, kind=kind, value=value, source=Interaction.Source.CHAT
    )
