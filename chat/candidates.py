"""Retrieval tools (InteRecAgent style) and the candidate set kept outside the prompt.

Each tool returns :class:`recommender.types.Recommendation` objects with evidence; the set is
merged, labelled C1..Cn and ordered by a combined score: that order is the fallback ("CF order")
the guard fills from. The LLM sees only short, labelled entries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np
from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import F

from catalog.models import Item
from recommender import selectors as rec_selectors
from recommender.embeddings import selectors as emb_selectors
from recommender.embeddings import vectors as emb_vectors
from recommender.reasons import reason_for
from recommender.selectors import History
from recommender.types import EVIDENCE_KINDS, SOURCES, Evidence, Filters, Recommendation

from .intent import Intent, State
from .models import Message
from .titles import title_bare

# CF above similar-items: a reference's neighbours that CF also finds for this user come first
# (docs/CHAT_QUALITY.md has the figures behind these weights)
TOOL_WEIGHTS = {"similar": 0.6, "cf": 1.0, "search": 0.5, "popular": 0.1}
# above any one tool's weight: a candidate in a wished genre comes before one that is not,
# unless the other is found by several tools at once
PREFER_BONUS = 1.0
SEARCH_WORD_RE = re.compile(r"[a-z]{3,}")
# how much the text embeddings' reading of a wish ("darker", "cozier") can move a candidate
WISH_TEXT_WEIGHT = 0.5


@dataclass
class Candidate:
    label: str
    rec: Recommendation
    tools: list[str] = field(default_factory=list)
    combined: float = 0.0
    anchors: list[int] = field(default_factory=list)  # reference items it is similar to

    @property
    def item(self) -> Item:
        return self.rec.item

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "item_id": self.item.pk,
            "source": self.rec.source,
            "tools": self.tools,
        }


@dataclass
class CandidateSet:
    candidates: list[Candidate]  # fallback order
    filters: Filters
    by_label: dict[str, Candidate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_label = {c.label: c for c in self.candidates}

    @property
    def ids(self) -> set[int]:
        return {c.item.pk for c in self.candidates}


def filters_for(
    *, state: State, history: History, standing_excludes: list[str], more: bool
) -> Filters:
    exclude_ids = set(history.excluded) | set(state.seen) | set(state.references)
    if more:
        exclude_ids |= set(state.shown)
    return Filters(
        genres=tuple(state.genres),
        exclude_genres=tuple(dict.fromkeys(state.exclude_genres + standing_excludes)),
        year_min=state.year_min,
        year_max=state.year_max,
        exclude_ids=frozenset(exclude_ids),
    )


def _filtered(filters: Filters):  # noqa: ANN202 - a QuerySet[Item]
    return rec_selectors.items_filtered(filters=filters)


def tool_search(*, query: str, filters: Filters, n: int) -> list[Recommendation]:
    """Hybrid search (full text fused with text embeddings: "a feel-good film about space")
    when items are embedded; else full-text search (PostgreSQL, GIN-indexed) over title, tags,
    genres and description."""
    if emb_selectors.embedding_space() is not None:
        hits = emb_selectors.hybrid_search(query=query, n=n, filters=filters)
        if hits:
            return hits
    words = list(dict.fromkeys(SEARCH_WORD_RE.findall(query.lower())))[:8]
    if not words:
        return []
    tsquery = SearchQuery(" | ".join(words), search_type="raw", config="english")
    qs = _filtered(filters)
    rows = list(
        qs.filter(search_vector=tsquery)
        .annotate(rank=SearchRank(F("search_vector"), tsquery))
        .order_by("-rank", "-year", "id")[:n]
    )
    if not rows:
        return []
    top = float(rows[0].rank) or 1.0
    label = " ".join(words)[:60]
    return [
        Recommendation(
            item=item,
            rank=pos,
            score=float(item.rank) / top,
            source="chat",
            evidence=[Evidence("query_match", label, round(float(item.rank) / top, 4))],
        )
        for pos, item in enumerate(rows, start=1)
    ]


def _wish_lean(wishes: list[str], item_ids: list[int]) -> dict[int, float]:
    """Per candidate, how well its text fits the wishes as written (0..WISH_TEXT_WEIGHT, spread
    over the candidates), from the text embeddings; without them (or without vectors for these
    items) nothing, and the genre vocabulary alone carries the wish."""
    space = emb_vectors.embedding_space() if wishes and item_ids else None
    if space is None:
        return {}
    query = emb_vectors.query_vector(text="a film that is " + ", ".join(wishes), space=space)
    vectors = emb_vectors.item_vectors(item_ids=item_ids, space=space) if query is not None else {}
    if not vectors:
        return {}
    q = query / (np.linalg.norm(query) or 1.0)
    sims = {i: float(v @ q) / (float(np.linalg.norm(v)) or 1.0) for i, v in vectors.items()}
    low, high = min(sims.values()), max(sims.values())
    if high - low < 1e-6:
        return {}
    # cosines of short texts sit in a narrow band: what counts is the order among candidates
    return {i: WISH_TEXT_WEIGHT * (s - low) / (high - low) for i, s in sims.items()}


def _asked_evidence(
    cand: Candidate, preferred: list[str], refs: dict[int, Item]
) -> Evidence | None:
    """What of the request this candidate answers, first in its evidence so that its reason
    says it: the reference it is like (unless its evidence already names it as a favourite of
    the user's) and the wished genres it has. The reference is named by its bare title: the
    guard shows a query match only when it echoes the user's own words."""
    named = cand.rec.history_item_ids
    anchors = [refs[a] for a in cand.anchors if a in refs and a not in named]
    parts = []
    if anchors:
        parts.append("like " + " and ".join(title_bare(a.title) for a in anchors[:2]))
    if preferred:
        parts.append(f"{', '.join(preferred)}, as you asked")
    if not parts:
        return None
    return Evidence(
        "query_match",
        ", ".join(parts),
        float(len(anchors) + len(preferred)),
        item_id=anchors[0].pk if anchors else None,
    )


def candidates_gather(
    *,
    user,
    state: State,
    filters: Filters,
    history: History,
    size: int,
    tools: set[str] | None = None,
) -> CandidateSet:
    """Run the retrieval tools for this state and merge them into one labelled candidate set.

    ``tools``: which optional tools to run (``search``); CF runs always, similar-items when the
    state has reference items, popular items only to fill a short set.
    """
    pool: dict[int, Candidate] = {}
    best: dict[tuple[int, str], float] = {}  # (item, tool) -> its best score from that tool

    def add(recs: list[Recommendation], tool: str, anchor: int | None = None) -> None:
        for rec in recs:
            if rec.item.pk in filters.exclude_ids or rec.item.is_hidden:
                continue
            cand = pool.get(rec.item.pk)
            if cand is None:
                cand = pool[rec.item.pk] = Candidate(label="", rec=rec)
            else:
                known = {(e.kind, e.label, e.item_id) for e in cand.rec.evidence}
                cand.rec.evidence.extend(
                    e for e in rec.evidence if (e.kind, e.label, e.item_id) not in known
                )
                if tool == "similar" and cand.rec.source != "cf":
                    cand.rec.source = rec.source
            if tool not in cand.tools:
                cand.tools.append(tool)
            if anchor is not None and anchor not in cand.anchors:
                cand.anchors.append(anchor)
            key = (rec.item.pk, tool)
            best[key] = max(best.get(key, 0.0), float(rec.score))

    # a wish ("funnier") also fetches what the tools find within the wished genres, so that a
    # soft constraint has enough candidates to lean on without becoming a filter
    wish = replace(filters, genres=tuple(state.prefer_genres)) if state.prefer_genres else None
    if wish is not None and filters.genres:
        wish = None  # a hard genre already narrows the set; the wish only orders it
    refs = {i.pk: i for i in Item.objects.filter(pk__in=state.references, is_hidden=False)}
    per_ref = max(10, size // max(1, len(refs)))
    for ref_id in state.references:
        if ref_id in refs:
            for f in (filters, wish) if wish is not None else (filters,):
                similar = rec_selectors.similar_items(
                    item=refs[ref_id], n=per_ref, user=user, filters=f
                )
                add(similar, "similar", anchor=ref_id)
    add(rec_selectors.recommendations_for_user(user=user, n=size, filters=filters), "cf")
    if wish is not None:
        add(rec_selectors.recommendations_for_user(user=user, n=size // 2, filters=wish), "cf")
    if state.query and (tools is None or "search" in tools):
        add(tool_search(query=state.query, filters=filters, n=max(10, size // 3)), "search")
    if len(pool) < size:
        exclude = set(pool) | set(filters.exclude_ids)
        add(
            rec_selectors.popular_items(n=size - len(pool), filters=filters, exclude=exclude),
            "popular",
        )

    lean = _wish_lean(state.wishes, list(pool))
    for cand in pool.values():
        cand.combined = lean.get(cand.item.pk, 0.0) + sum(
            TOOL_WEIGHTS[tool] * max(best[(cand.item.pk, tool)], 0.0) for tool in cand.tools
        )
        preferred = [g for g in state.prefer_genres if g in cand.item.genres]
        if preferred:
            cand.combined += PREFER_BONUS
        asked = _asked_evidence(cand, preferred, refs)
        if asked is not None:
            cand.rec.evidence.insert(0, asked)
    ordered = sorted(pool.values(), key=lambda c: (-c.combined, c.item.pk))[:size]
    for pos, cand in enumerate(ordered, start=1):
        cand.label = f"C{pos}"
        cand.rec.rank = pos
        cand.rec.reason = reason_for(cand.rec)
    return CandidateSet(ordered, filters)


def card_last_shown(*, user, item: Item) -> Recommendation | None:  # noqa: ANN001
    """The card this user was last shown for ``item`` in a chat answer, as it was shown: its
    evidence and reason (None if the chat never showed it)."""
    message = (
        Message.objects.filter(
            conversation__user=user,
            role=Message.Role.ASSISTANT,
            results__contains=[{"item": {"id": item.pk}}],
        )
        .order_by("-created_at", "-id")
        .only("results")
        .first()
    )
    if message is None:
        return None
    card = next(r for r in message.results if r["item"]["id"] == item.pk)
    evidence = [
        Evidence(e["kind"], e["label"], float(e.get("weight", 0.0)), e.get("item_id"))
        for e in card.get("evidence") or []
        if e.get("kind") in EVIDENCE_KINDS
    ]
    return Recommendation(
        item=item,
        rank=1,
        score=float(card.get("score") or 0.0),
        source=card.get("source") if card.get("source") in SOURCES else "chat",
        evidence=evidence,
        reason=reason_for(
            Recommendation(item=item, rank=1, score=0.0, source="chat", evidence=evidence)
        ),
    )


def candidates_for_question(*, user, item: Item) -> CandidateSet:
    """The one item asked about ("why did you suggest Heat?"). An item the chat showed is
    explained with the evidence of its card, so the answer says what the card said; any other
    item with why it would be recommended now (the item page's explanation)."""
    rec = card_last_shown(user=user, item=item) or rec_selectors.recommendation_for_item(
        user=user, item=item
    )
    cand = Candidate(label="C1", rec=rec, tools=["explain"], combined=float(rec.score))
    return CandidateSet([cand], Filters())


# --- the retrieve stage of a turn -------------------------------------------------------------------


@dataclass
class Retrieval:
    """What the turn answers from: the candidate set, how many to show, and what may not be shown."""

    cset: CandidateSet
    n: int
    excluded: set[int]  # the filters' exclusions (seen, dismissed, this conversation's)
    question: Item | None  # the item asked about ("why did you suggest Heat?"), if any
    refs: list[Item]  # the items the request is "like"


def question_item(*, intent: Intent, state: State) -> Item | None:
    """The visible item the user asks about, by title or by rank in the previous answer."""
    item_id = intent.question_item
    rank = intent.question_rank
    if item_id is None and rank is not None and state.last_results:
        if -1 <= rank <= len(state.last_results) and rank != 0:
            item_id = state.last_results[rank - 1 if rank > 0 else -1]
    if item_id is None:
        return None
    return Item.objects.filter(pk=item_id, is_hidden=False).first()


def retrieve(
    *, user, intent: Intent, state: State, history: History, standing_excludes: list[str]
) -> Retrieval:  # noqa: ANN001
    """A question gets its one item; any other request ``CHAT_CANDIDATES`` candidates under the
    conversation's filters, of which ``CHAT_RESULTS`` are shown."""
    question = question_item(intent=intent, state=state)
    if question is not None:
        cset = candidates_for_question(user=user, item=question)
        return Retrieval(cset, 1, set(), question, [])
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
    refs = list(Item.objects.filter(pk__in=state.references))
    return Retrieval(cset, int(settings.CHAT_RESULTS), set(filters.exclude_ids), None, refs)
