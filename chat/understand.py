"""The understand stage: what the user's message asks for, as an :class:`Intent`.

The built-in parser always runs; with an LLM configured (and ``LLM_USE_TOOLS``) the LLM reads the
message as tool calls, which are validated against the catalog here (unknown genres, titles and
years are dropped), so nothing the LLM wrote reaches the rest of the turn unchecked. An LLM
fault keeps the built-in parse.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.conf import settings

from catalog.models import Item

from . import claims, llm, prompts
from .claims import user_words_only
from .consent import feedback_asked, standing_asked
from .intent import Intent, State, intent_parse
from .titles import TitleIndex, title_resolve


def understand(
    *,
    text: str,
    state: State,
    index: TitleIndex,
    use_llm: bool,
    deadline: float,
    usage: llm.LLMUsage,
    repairs: Counter,
    facts: claims.Facts,
) -> Intent:
    """The intent of ``text``; the LLM's cost goes to ``usage``, its faults to ``repairs``."""
    intent = intent_parse(text, index=index)
    if not (use_llm and settings.LLM_USE_TOOLS):
        return intent
    previous = list(Item.objects.filter(pk__in=state.last_results, is_hidden=False))
    previous.sort(key=lambda i: state.last_results.index(i.pk))
    system = prompts.UNDERSTAND_SYSTEM.format(genres=", ".join(index.genres))
    try:
        reply = llm.complete(
            messages=[{"role": "system", "content": system}]
            + prompts.understand_messages(text=text, previous=previous),
            tools=prompts.understand_tools(index.genres),
            max_tokens=300,
            deadline=deadline,
        )
    except llm.LLMError as exc:
        usage.merge(llm.LLMUsage(errors=[exc.kind]))
        repairs["understand_fallback"] += 1
        return intent
    usage.merge(reply.usage)
    if not reply.tool_calls:
        repairs["understand_no_tools"] += 1
        return intent
    return intent_from_tools(reply.tool_calls, intent, index, text=text, facts=facts)


def _genre(value: Any, index: TitleIndex) -> str | None:
    if not isinstance(value, str):
        return None
    for g in index.genres:
        if g.lower() == value.strip().lower():
            return g
    return None


def _year(value: Any) -> int | None:
    return value if isinstance(value, int) and 1800 <= value <= 2200 else None


def intent_from_tools(
    calls: list[llm.ToolCall],
    builtin: Intent,
    index: TitleIndex,
    *,
    text: str,
    facts: claims.Facts,
) -> Intent:
    """Validate the LLM's tool calls into an Intent. The built-in parse keeps what the LLM cannot
    see (ordinals) or did not report (feedback, standing wishes, soft genre wishes). A search
    query keeps only the user's own words; a write (feedback, a standing preference) is kept only
    when the user's message ``text`` asks for it (``chat.consent``)."""
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
            intent.query = user_words_only(args["query"][:600], text)[:200]
        elif call.name == "explain_item" and isinstance(args.get("title"), str):
            intent.question_item = title_resolve(args["title"], index=index)
        elif call.name == "record_feedback" and isinstance(args.get("title"), str):
            pk = title_resolve(args["title"], index=index)
            sentiment = args.get("sentiment")
            if pk is not None and sentiment in {"like", "dislike", "seen"}:
                if feedback_asked(text=text, item_id=pk, sentiment=sentiment, facts=facts):
                    intent.feedback.append((pk, sentiment))
        elif call.name == "remember_preference":
            if (g := _genre(args.get("exclude_genre"), index)) and standing_asked(
                text=text, genre=g
            ):
                intent.standing.append(("exclude_genre", g))
                if g not in intent.exclude_genres:
                    intent.exclude_genres.append(g)
    if not intent.feedback:
        intent.feedback = list(builtin.feedback)
    if not intent.standing:
        intent.standing = list(builtin.standing)
        intent.exclude_genres = list(dict.fromkeys(intent.exclude_genres + builtin.exclude_genres))
    intent.prefer_genres = [g for g in builtin.prefer_genres if g not in intent.exclude_genres]
    intent.wishes = list(builtin.wishes)  # the tools have no slot for them: the text's own
    intent.more, intent.reset = builtin.more, builtin.reset
    return intent
