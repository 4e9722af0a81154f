"""Writes of the chat: conversations, messages and their answers, feedback, preferences.

A user message is answered by one turn (:func:`message_answer_stream`), a pipeline of stages,
each in the module named for it: understand (``understand.py``) -> retrieve (``candidates.py``)
-> rerank (``rerank.py``) -> guard (``guard.py``) -> save (``answer.py``). The turn's writes
on the user (feedback, standing preferences) go through the service functions, here.

The browser views and the API call these::

    conversation_create(*, user, title="") -> Conversation
    message_create(*, conversation, user, text) -> Message            # saved, waiting
    message_answer_stream(*, message, user) -> Iterator[ChatEvent]    # answers it, streaming
    message_post(*, conversation, user, text) -> ChatTurn             # both, not streaming
    message_post_stream(*, conversation, user, text) -> Iterator[ChatEvent]
    chat_feedback_record(*, user, item_id, kind, value=None) -> Interaction   # source "chat"
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import transaction

from catalog.models import Interaction, Item
from catalog.services import interaction_record, preference_create
from recommender.selectors import user_history_ids
from recsite.exceptions import ApplicationError

from . import claims, llm, prompts, selectors
from .answer import (
    BUILTIN_NOTICE,
    FALLBACK_NOTICE,
    ChatEvent,
    ChatTurn,
    Draft,
    answer_save,
    intro_template,
)
from .candidates import retrieve
from .guard import QUESTION_BLOCKED, Guard, retrieval_screened
from .intent import Intent, State, state_merge
from .models import Conversation, Message
from .rerank import Rerank
from .titles import title_index
from .understand import understand

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 1000
HISTORY_IN_PROMPT = 10
# what a chat sentence says about an item -> the interaction it records: (kind, value)
FEEDBACK_INTERACTIONS = {"like": ("like", None), "dislike": ("rating", 1.0), "seen": ("view", None)}


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
    if "\x00" in text:  # PostgreSQL text cannot hold it; no keyboard types it
        raise ApplicationError("a message cannot contain NUL characters", {"field": "text"})
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
    return _turn_events(user_message=message, user=user)


def _turn_events(*, user_message: Message, user) -> Iterator[ChatEvent]:  # noqa: ANN001
    """Answer one claimed user message: intro text as it is written, each recommendation once it
    has passed the guard, then ``done`` with the saved turn. Any LLM fault ends the same way: a
    valid list filled from the candidate order with template reasons, never an exception."""
    use_llm = llm.llm_configured()
    draft = Draft(use_llm=use_llm, notice="" if use_llm else BUILTIN_NOTICE)
    deadline = time.monotonic() + float(settings.LLM_TURN_BUDGET_SECONDS)
    text = user_message.text
    index = title_index()
    facts = claims.facts_read(user=user, index=index)
    state = State.from_dict(user_message.conversation.state)

    # understand: the message's intent; what it says about items and standing wishes is recorded
    intent = understand(
        text=text,
        state=state,
        index=index,
        use_llm=use_llm,
        deadline=deadline,
        usage=draft.usage,
        repairs=draft.repairs,
        facts=facts,
    )
    recorded = _intent_feedback_record(
        user=user, intent=intent, conversation_id=user_message.conversation_id
    )
    standing = list(selectors.standing_exclusions(user=user))
    state = state_merge(state, intent)
    history = user_history_ids(user_id=user.pk)

    # retrieve: the candidates, kept outside the prompt; the guard watches what leaves them
    found, question_blocked = retrieval_screened(
        retrieve(
            user=user, intent=intent, state=state, history=history, standing_excludes=standing
        ),
        history,
    )
    prompt_history = (
        selectors.prompt_history(user=user, dismissed=history.dismissed, limit=HISTORY_IN_PROMPT)
        if use_llm
        else []
    )
    guard = Guard.create(
        found=found,
        user=user,
        history=history,
        facts=facts,
        user_texts=selectors.user_texts(conversation=user_message.conversation),
    )

    def save() -> ChatTurn:
        return answer_save(
            draft=draft,
            user_message=user_message,
            intent=intent,
            state=state,
            found=found,
            guard=guard,
            recorded=recorded,
        )

    turn: ChatTurn | None = None
    try:
        # rerank: the LLM's picks, each shown as soon as the guard accepts it
        if use_llm and found.cset.candidates:
            messages, _ = prompts.rerank_messages(
                text=text,
                state=state,
                history=prompt_history,
                standing=[f"no {g}" for g in standing],
                cset=found.cset,
                n=found.n,
                question=found.question is not None,
            )
            rerank = Rerank(
                messages=messages,
                cset=found.cset,
                n=found.n,
                deadline=deadline,
                repairs=draft.repairs,
            )
            intro, checked_len = "", 0
            try:
                for kind, value in rerank:
                    if kind == "intro":  # shown once whole and checked: a claim ends anywhere
                        intro += value
                        continue
                    if intro and not checked_len:  # the picks begin: the intro is whole
                        checked_len = len(intro)
                        if checked := guard.intro(intro):
                            draft.intro = checked
                            yield draft.emit(ChatEvent("intro", text=checked))
                    if (rec := guard.accept(value)) is not None:
                        draft.llm_recs += 1
                        yield draft.emit(ChatEvent("rec", rec=rec))
            finally:
                draft.usage.merge(rerank.usage)
            if len(intro) > checked_len and not draft.intro:
                if rerank.why:  # cut inside the intro (or before any pick): never shown half
                    draft.repairs["intro_cut"] += 1
                elif checked := guard.intro(intro):
                    draft.intro = checked
                    yield draft.emit(ChatEvent("intro", text=checked))
            if rerank.why and not draft.llm_recs:
                draft.notice = FALLBACK_NOTICE.format(why=rerank.why)
                yield draft.emit(ChatEvent("notice", text=draft.notice))
        if not draft.intro.strip():
            draft.intro = intro_template(state, guard.answer_size(), found.refs, found.question)
            if question_blocked:
                draft.intro = QUESTION_BLOCKED
            yield draft.emit(ChatEvent("intro", text=draft.intro))
        if not use_llm:
            yield draft.emit(ChatEvent("notice", text=draft.notice))
        # guard: a short list is filled from the candidate order, with template reasons
        for rec in guard.fill():
            yield draft.emit(ChatEvent("rec", rec=rec))
        # save
        turn = save()
        for item_id in turn.retracted:  # dismissed or hidden while this answer was written
            yield ChatEvent("retract", text=str(item_id))
        yield ChatEvent("done", turn=turn)
    finally:
        if turn is None:  # the client went away mid-stream: still save a complete turn
            try:
                save()
            except Exception:  # never mask the original exit
                logger.exception("could not save an interrupted chat turn")


def _intent_feedback_record(*, user, intent: Intent, conversation_id: int) -> list[dict]:  # noqa: ANN001
    """What the message said about items ("I loved Alien") and standing wishes ("no more
    horror"), recorded as the user's own; an item or genre the services refuse is skipped.
    Returns what was recorded, each with the id that undoes it."""
    recorded: list[dict] = []
    said = {"like": "you liked", "dislike": "you disliked", "seen": "you have seen"}
    for item_id, sentiment in intent.feedback:
        item = Item.objects.filter(pk=item_id, is_hidden=False).first()
        if item is None:
            continue
        kind, value = FEEDBACK_INTERACTIONS[sentiment]
        try:
            row = interaction_record(user=user, item=item, kind=kind, value=value, source="chat")
        except ApplicationError:
            logger.info("chat feedback on item %s refused", item_id)
            continue
        text = f"Noted: {said[sentiment]} {item}."
        recorded.append({"kind": sentiment, "text": text, "interaction_id": row.pk})
    for kind, value in intent.standing:
        try:
            pref = preference_create(
                user=user, kind=kind, value=value, conversation_id=conversation_id
            )
        except ApplicationError:
            logger.info("chat preference %s=%s refused", kind, value)
            continue
        text = f"Noted: no more {pref.value}."
        recorded.append({"kind": kind, "text": text, "preference_id": pref.pk})
    return recorded


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
