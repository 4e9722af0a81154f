"""The answer of a turn: the events it streams, what it is saved as, and the template intro.

A turn streams :class:`ChatEvent` objects and ends with one carrying the saved :class:`ChatTurn`.
:func:`answer_save` is the save stage: it fills the list from the candidate order (so a turn the
client left mid-stream is still saved complete), stores the assistant's message and the
conversation's new state in one transaction, and reports the turn's metrics.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from catalog.models import Item
from recommender.types import Recommendation
from recsite import metrics

from . import llm
from .candidates import Retrieval
from .guard import Guard
from .intent import Intent, State
from .models import Conversation, Message

BUILTIN_NOTICE = "No LLM is configured: answered by the built-in parser and template explanations."
FALLBACK_NOTICE = "The language model could not answer properly ({why}); these picks come from the recommender with template explanations."


@dataclass
class ChatEvent:
    kind: str  # "intro" (checked text) | "rec" (a guarded Recommendation) | "notice" | "retract" | "done"
    text: str = ""
    rec: Recommendation | None = None
    turn: ChatTurn | None = None


@dataclass
class ChatTurn:
    conversation: Conversation
    user_message: Message
    message: Message  # the assistant's
    intro: str
    recommendations: list[Recommendation]
    produced_by: str  # "llm" | "builtin"
    repairs: dict[str, int]
    usage: dict[str, Any]
    notice: str
    pipeline_ms: float
    first_event_ms: float | None = None
    intent: Intent = field(default_factory=Intent)
    retracted: list[int] = field(default_factory=list)  # shown, then dismissed or hidden


@dataclass
class Draft:
    """The answer as it stands while the turn streams; saved as it is if the client leaves."""

    use_llm: bool
    started: float = field(default_factory=time.perf_counter)
    usage: llm.LLMUsage = field(default_factory=llm.LLMUsage)
    repairs: Counter = field(default_factory=Counter)  # the turn's own; the guard counts its own
    intro: str = ""
    notice: str = ""
    llm_recs: int = 0  # recommendations the LLM chose that passed the guard
    first_event_ms: float | None = None

    def emit(self, event: ChatEvent) -> ChatEvent:
        """Pass an event on, noting when the first one left."""
        if self.first_event_ms is None:
            self.first_event_ms = (time.perf_counter() - self.started) * 1000
        return event


def intro_template(state: State, n: int, refs: list[Item], question: Item | None) -> str:
    """The intro when the LLM wrote none: it restates the request the picks answer."""
    if question is not None:
        return f"Here is why {question} is on your list."
    if n == 0:
        return "I couldn't find anything in the catalog that fits all of that. Try loosening a constraint."
    parts = []
    if refs:
        parts.append("like " + " and ".join(str(r) for r in refs))
    if state.genres:
        parts.append(" or ".join(state.genres))
    if state.prefer_genres:
        parts.append("leaning " + " and ".join(state.prefer_genres))
    if state.year_min and state.year_max:
        parts.append(
            f"from {state.year_min}"
            if state.year_min == state.year_max
            else f"{state.year_min}–{state.year_max}"
        )
    elif state.year_min:
        parts.append(f"from {state.year_min} on")
    elif state.year_max:
        parts.append(f"up to {state.year_max}")
    if state.exclude_genres:
        parts.append("no " + " or ".join(state.exclude_genres))
    what = f" ({'; '.join(parts)})" if parts else ""
    return f"Here are {n} picks for you{what}."


def answer_save(
    *,
    draft: Draft,
    user_message: Message,
    intent: Intent,
    state: State,
    found: Retrieval,
    guard: Guard,
    recorded: list[dict] | None = None,
) -> ChatTurn:
    """Complete the list, store the assistant's message and the conversation's state. The
    guard reads hidden, dismissed and seen items once more inside the storing transaction.
    ``recorded``: the writes the message asked for, said in the notice and kept with the intent."""
    recorded = recorded or []
    guard.fill()
    produced_by = Message.ProducedBy.LLM if draft.llm_recs else Message.ProducedBy.BUILTIN
    usage = draft.usage
    total_ms = (time.perf_counter() - draft.started) * 1000
    label_of = {c.item.pk: c.label for c in found.cset.candidates}
    conversation = user_message.conversation
    notice = " ".join([r["text"] for r in recorded] + [draft.notice]).strip()
    with transaction.atomic():
        retracted = guard.recheck()
        results = guard.accepted
        message = Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            reply_to=user_message,
            text=draft.intro,
            intent={**intent.as_dict(), "recorded": recorded},
            candidates=[c.as_dict() for c in found.cset.candidates],
            results=[{**r.as_dict(), "label": label_of.get(r.item.pk, "")} for r in results],
            repairs=dict(draft.repairs + guard.repairs),
            produced_by=produced_by,
            llm_usage=usage.as_dict() if draft.use_llm else {},
            pipeline_ms=round(total_ms - usage.latency_ms, 2),
            llm_ms=round(usage.latency_ms, 2) if draft.use_llm else None,
            notice=notice[:300],
        )
        ids = [r.item.pk for r in results]
        if found.question is None:
            state.last_results = ids
        state.shown = list(dict.fromkeys(state.shown + ids))[-500:]
        conversation.state = state.as_dict()
        if not conversation.title:
            conversation.title = user_message.text[:80]
        conversation.save(update_fields=["state", "title", "updated_at"])
        Message.objects.filter(pk=user_message.pk).update(status=Message.Status.DONE)
    fallbacks = []
    if draft.use_llm and draft.repairs.get("understand_fallback"):
        fallbacks.append("understand")
    if draft.use_llm and found.cset.candidates and not draft.llm_recs:
        fallbacks.append("rerank")
    metrics.chat_turn_observed(
        produced_by=str(produced_by),
        guard_repairs=guard.repairs if draft.use_llm else {},  # built-in: the guard only fills
        fallbacks=fallbacks,
    )
    return ChatTurn(
        conversation=conversation,
        user_message=user_message,
        message=message,
        intro=draft.intro,
        recommendations=results,
        produced_by=produced_by,
        repairs=dict(message.repairs),
        usage=message.llm_usage,
        notice=draft.notice,
        pipeline_ms=message.pipeline_ms or 0.0,
        first_event_ms=draft.first_event_ms,
        intent=intent,
        retracted=retracted,
    )
