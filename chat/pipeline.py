"""One chat turn: understand -> retrieve candidates -> rerank and explain (LLM) -> guard -> save.

:func:`turn_events` is a generator of :class:`ChatEvent` (intro text as it is written, each
recommendation once it has passed the guard, then ``done`` with the saved :class:`ChatTurn`).
Any LLM fault ends in the same place: a valid list filled from the candidate order with template
reasons. Nothing here raises for an LLM problem.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from catalog.models import POSITIVE_KINDS, Interaction, Item
from catalog.services import interaction_record
from recommender.selectors import History, user_history_ids
from recommender.types import Recommendation
from recsite import metrics
from recsite.exceptions import ApplicationError

from . import llm, prompts
from .candidates import CandidateSet, candidates_for_question, candidates_gather, filters_for
from .guard import Guard, PicksParser
from .intent import Intent, State, intent_parse, state_merge
from .models import ChatPreference, Conversation, Message
from .selectors import standing_exclusions
from .titles import TitleIndex, title_index, title_resolve

logger = logging.getLogger(__name__)

BUILTIN_NOTICE = "No LLM is configured: answered by the built-in parser and template explanations."
FALLBACK_NOTICE = "The language model could not answer properly ({why}); these picks come from the recommender with template explanations."
HISTORY_IN_PROMPT = 10


@dataclass
class ChatEvent:
    kind: str  # "intro" (text delta) | "rec" (a guarded Recommendation) | "notice" | "done"
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


# --- understanding with the LLM (tool calls) --------------------------------------------------------


def _genre(value: Any, index: TitleIndex) -> str | None:
    if not isinstance(value, str):
        return None
    for g in index.genres:
        if g.lower() == value.strip().lower():
            return g
    return None


def _year(value: Any) -> int | None:
    return value if isinstance(value, int) and 1800 <= value <= 2200 else None


def intent_from_tools(calls: list[llm.ToolCall], builtin: Intent, index: TitleIndex) -> Intent:
    """Validate the LLM's tool calls into an Intent (unknown genres, titles and years dropped).
    The built-in parse keeps what the LLM cannot see (ordinals, feedback it did not report)."""
    intent = Intent(
        parser="llm",
        followup_ranks=list(builtin.followup_ranks),
        question_rank=builtin.question_rank,
    )
    for call in calls:
        args = call.arguments
        if call.name == "set_filters":
            intent.genres = [g for g in (_genre(v, index) for v in args.get("genres") or []) if g]
            intent.exclude_genres = [
                g for g in (_genre(v, index) for v in args.get("exclude_genres") or []) if g
            ]
            intent.year_min, intent.year_max = (
                _year(args.get("year_min")),
                _year(args.get("year_max")),
            )
        elif call.name == "similar_to":
            for title in (args.get("titles") or [])[:3]:
                if isinstance(title, str) and (pk := title_resolve(title, index=index)) is not None:
                    intent.references.append(pk)
        elif call.name == "search_text" and isinstance(args.get("query"), str):
            intent.query = args["query"][:200]
        elif call.name == "explain_item" and isinstance(args.get("title"), str):
            intent.question_item = title_resolve(args["title"], index=index)
        elif call.name == "record_feedback" and isinstance(args.get("title"), str):
            pk = title_resolve(args["title"], index=index)
            if pk is not None and args.get("sentiment") in {"like", "dislike", "seen"}:
                intent.feedback.append((pk, args["sentiment"]))
        elif call.name == "remember_preference":
            if g := _genre(args.get("exclude_genre"), index):
                intent.standing.append(("exclude_genre", g))
                if g not in intent.exclude_genres:
                    intent.exclude_genres.append(g)
    if not intent.feedback:
        intent.feedback = list(builtin.feedback)
    if not intent.standing:
        intent.standing = list(builtin.standing)
        intent.exclude_genres = list(dict.fromkeys(intent.exclude_genres + builtin.exclude_genres))
    intent.prefer_genres = [g for g in builtin.prefer_genres if g not in intent.exclude_genres]
    intent.more, intent.reset = builtin.more, builtin.reset
    return intent


# --- the turn ---------------------------------------------------------------------------------------


def _prompt_history(user, history: History) -> list[tuple[Item, str]]:  # noqa: ANN001
    rows = (
        Interaction.objects.filter(
            user=user,
            kind__in=POSITIVE_KINDS,
            item__is_hidden=False,
        )
        .exclude(item_id__in=history.dismissed)
        .select_related("item")
        .order_by("-timestamp", "-id")[: HISTORY_IN_PROMPT * 2]
    )
    out: dict[int, tuple[Item, str]] = {}
    for row in rows:
        if row.item_id in out:
            continue
        signal = "liked" if row.kind == Interaction.Kind.LIKE else f"rated {row.value:g}/5"
        out[row.item_id] = (row.item, signal)
        if len(out) >= HISTORY_IN_PROMPT:
            break
    return list(out.values())


def _template_intro(state: State, n: int, refs: list[Item], question: Item | None) -> str:
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


def _record_feedback(user, intent: Intent, conversation: Conversation) -> None:  # noqa: ANN001
    for item_id, kind in intent.feedback:
        item = Item.objects.filter(pk=item_id, is_hidden=False).first()
        if item is None:
            continue
        try:
            if kind == "like":
                interaction_record(user=user, item=item, kind="like", source="chat")
            elif kind == "dislike":
                interaction_record(user=user, item=item, kind="rating", value=1.0, source="chat")
            else:
                interaction_record(user=user, item=item, kind="view", source="chat")
        except ApplicationError:
            logger.info("chat feedback on item %s refused", item_id)
    for kind, value in intent.standing:
        ChatPreference.objects.get_or_create(
            user=user, kind=kind, value=value, defaults={"conversation": conversation}
        )


def turn_events(*, user_message: Message, user) -> Iterator[ChatEvent]:  # noqa: ANN001, C901
    """Answer one user message (already saved). Yields events; the last is ``done``."""
    started = time.perf_counter()
    conversation = user_message.conversation
    text = user_message.text
    usage = llm.LLMUsage()
    repairs: Counter = Counter()
    use_llm = llm.llm_configured()
    deadline = time.monotonic() + float(settings.LLM_TURN_BUDGET_SECONDS)
    notice = "" if use_llm else BUILTIN_NOTICE
    first_event_ms: float | None = None

    index = title_index()
    state = State.from_dict(conversation.state)
    intent = intent_parse(text, index=index)
    if use_llm and settings.LLM_USE_TOOLS:
        previous = list(Item.objects.filter(pk__in=state.last_results, is_hidden=False))
        previous.sort(key=lambda i: state.last_results.index(i.pk))
        try:
            reply = llm.complete(
                messages=[
                    {
                        "role": "system",
                        "content": prompts.UNDERSTAND_SYSTEM.format(genres=", ".join(index.genres)),
                    }
                ]
                + prompts.understand_messages(text=text, previous=previous),
                tools=prompts.understand_tools(index.genres),
                max_tokens=300,
                deadline=deadline,
            )
            usage.merge(reply.usage)
            if reply.tool_calls:
                intent = intent_from_tools(reply.tool_calls, intent, index)
            else:
                repairs["understand_no_tools"] += 1
        except llm.LLMError as exc:
            usage.merge(llm.LLMUsage(errors=[exc.kind]))
            repairs["understand_fallback"] += 1

    _record_feedback(user, intent, conversation)
    standing_excludes = list(standing_exclusions(user=user))
    state = state_merge(state, intent)
    history = user_history_ids(user_id=user.pk)

    question: Item | None = None
    q_id = intent.question_item
    if q_id is None and intent.question_rank is not None and state.last_results:
        r = intent.question_rank
        if -1 <= r <= len(state.last_results) and r != 0:
            q_id = state.last_results[r - 1 if r > 0 else -1]
    if q_id is not None:
        question = Item.objects.filter(pk=q_id, is_hidden=False).first()

    n = 1 if question is not None else int(settings.CHAT_RESULTS)
    if question is not None:
        cset: CandidateSet = candidates_for_question(user=user, item=question)
        excluded: set[int] = set()
    else:
        filters = filters_for(
            state=state, history=history, standing_excludes=standing_excludes, more=intent.more
        )
        cset = candidates_gather(
            user=user,
            state=state,
            filters=filters,
            history=history,
            size=int(settings.CHAT_CANDIDATES),
        )
        excluded = set(filters.exclude_ids)
    refs = list(Item.objects.filter(pk__in=state.references)) if question is None else []

    prompt_history = _prompt_history(user, history) if use_llm else []
    known_titles = {item.pk: str(item) for item, _ in prompt_history}
    known_titles.update({c.item.pk: str(c.item) for c in cset.candidates})
    known_titles.update({r.pk: str(r) for r in refs})
    guard = Guard.create(
        cset=cset,
        n=n,
        excluded=excluded,
        dismissed=set(history.dismissed),
        known_titles=known_titles,
        history_labels={f"H{i}": item.pk for i, (item, _) in enumerate(prompt_history, start=1)},
        index=index,
    )

    intro = ""
    llm_recs = 0
    saved: dict[str, Any] = {}

    def event(ev: ChatEvent) -> ChatEvent:
        nonlocal first_event_ms
        if first_event_ms is None:
            first_event_ms = (time.perf_counter() - started) * 1000
        return ev

    def finish() -> ChatTurn:
        fill = guard.fill()
        del fill
        produced_by = Message.ProducedBy.LLM if llm_recs else Message.ProducedBy.BUILTIN
        results = guard.accepted
        total_ms = (time.perf_counter() - started) * 1000
        label_of = {c.item.pk: c.label for c in cset.candidates}
        with transaction.atomic():
            message = Message.objects.create(
                conversation=conversation,
                role=Message.Role.ASSISTANT,
                reply_to=user_message,
                text=intro,
                intent=intent.as_dict(),
                candidates=[c.as_dict() for c in cset.candidates],
                results=[{**r.as_dict(), "label": label_of.get(r.item.pk, "")} for r in results],
                repairs=dict(repairs + guard.repairs),
                produced_by=produced_by,
                llm_usage=usage.as_dict() if use_llm else {},
                pipeline_ms=round(total_ms - usage.latency_ms, 2),
                llm_ms=round(usage.latency_ms, 2) if use_llm else None,
                notice=notice[:300],
            )
            ids = [r.item.pk for r in results]
            if question is None:
                state.last_results = ids
            state.shown = list(dict.fromkeys(state.shown + ids))[-500:]
            conversation.state = state.as_dict()
            if not conversation.title:
                conversation.title = text[:80]
            conversation.save(update_fields=["state", "title", "updated_at"])
            Message.objects.filter(pk=user_message.pk).update(status=Message.Status.DONE)
        fallbacks = []
        if use_llm and repairs.get("understand_fallback"):
            fallbacks.append("understand")
        if use_llm and cset.candidates and not llm_recs:
            fallbacks.append("rerank")
        metrics.chat_turn_observed(
            produced_by=str(produced_by),
            guard_repairs=guard.repairs if use_llm else {},  # built-in: the guard only fills
            fallbacks=fallbacks,
        )
        return ChatTurn(
            conversation=conversation,
            user_message=user_message,
            message=message,
            intro=intro,
            recommendations=results,
            produced_by=produced_by,
            repairs=dict(message.repairs),
            usage=message.llm_usage,
            notice=notice,
            pipeline_ms=message.pipeline_ms or 0.0,
            first_event_ms=first_event_ms,
            intent=intent,
        )

    try:
        if use_llm and cset.candidates:
            messages, _ = prompts.rerank_messages(
                text=text,
                state=state,
                history=prompt_history,
                standing=[f"no {g}" for g in standing_excludes],
                cset=cset,
                n=n,
                question=question is not None,
            )
            stream = llm.LLMStream(
                messages=messages,
                json_schema=prompts.rerank_schema([c.label for c in cset.candidates], n),
                deadline=deadline,
            )
            parser = PicksParser()
            why = ""
            try:
                for delta in stream:
                    intro_delta, picks = parser.feed(delta)
                    if intro_delta:
                        intro += intro_delta
                        yield event(ChatEvent("intro", text=intro_delta))
                    for pick in picks:
                        if (rec := guard.accept(pick)) is not None:
                            llm_recs += 1
                            yield event(ChatEvent("rec", rec=rec))
                if not parser.buffer.strip():
                    repairs["empty_answer"] += 1
                    why = "empty answer"
                else:
                    ok, rest, late_intro = parser.finish()
                    if not ok:
                        repairs["malformed_json"] += 1
                        why = "malformed answer"
                    if late_intro:
                        intro += late_intro
                        yield event(ChatEvent("intro", text=late_intro))
                    for pick in rest:
                        if (rec := guard.accept(pick)) is not None:
                            llm_recs += 1
                            yield event(ChatEvent("rec", rec=rec))
            except llm.LLMError as exc:
                repairs[f"llm_{exc.kind}"] += 1
                why = exc.kind.replace("_", " ")
            finally:
                usage.merge(stream.usage)
            if why and not llm_recs:
                notice = FALLBACK_NOTICE.format(why=why)
                yield event(ChatEvent("notice", text=notice))
        if not intro.strip():
            intro = _template_intro(
                state,
                min(
                    n, len(guard.accepted) + len([c for c in cset.candidates if guard._allowed(c)])
                ),
                refs,
                question,
            )
            yield event(ChatEvent("intro", text=intro))
        elif notice and not use_llm:
            pass
        if not use_llm:
            yield event(ChatEvent("notice", text=notice))
        for rec in guard.fill():
            yield event(ChatEvent("rec", rec=rec))
        turn = finish()
        saved["turn"] = turn
        yield ChatEvent("done", turn=turn)
    finally:
        if "turn" not in saved:  # the client went away mid-stream: still save a complete turn
            try:
                saved["turn"] = finish()
            except Exception:  # never mask the original exit
                logger.exception("could not save an interrupted chat turn")
