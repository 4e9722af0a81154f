"""The recommender's public reads: a user's list, similar items, popular items, the item page's
"why", the versions. Pages, the API and the chat call these.

Every result is a :class:`recommender.types.Recommendation` with the evidence of the explanation
contract. Serving reads the *active* model version (``storage``), scores the user's history
(``history``, ``scoring``), mixes in items only their text can place (``embeddings.coldstart``),
applies the list's policy below and explains each item (``evidence``). The active version and
the popularity fill come from ``serving``; similar items live in ``similar`` and are re-exported.

Curation is read live from the catalog: hidden items never appear, pinned items go first,
featured and boosted items move up; none of it needs a retrain.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from django.conf import settings
from django.db.models import QuerySet

from catalog.models import Item
from recsite.metrics import RECOMMENDATION_DURATION

from . import coherence
from .coherence import ShortHistory
from .embeddings.coldstart import cold_items_for_list, mix_cold_items
from .evidence import (
    PROFILE_ITEMS,
    ItemFacts,
    Ranked,
    item_facts,
    item_row,
    profile_cached,
    recommendations_build,
)
from .history import History, history_for_version
from .history_read import user_history_ids
from .models import ModelVersion
from .scoring import (
    Scored,
    explain_neighbours,
    factor_contributions,
    one_blas_thread,
    score_factor_item,
    score_factors,
    score_neighbours,
)
from .serving import (
    fill_scores,
    popular_fill,
    serving_state,
    serving_state_forget,
    version_active,
)
from .similar import reference_item, similar_items
from .storage import Candidates
from .types import Filters, Recommendation

__all__ = [
    "History",
    "items_filtered",
    "onboarding_items",
    "popular_items",
    "recommendation_for_item",
    "reference_item",
    "recommendations_for_user",
    "similar_items",
    "user_history_ids",
    "serving_state",
    "serving_state_forget",
    "version_active",
    "version_list",
]

BOOST_SCALE = 0.1  # final = score / top score + BOOST_SCALE * boost
FEATURED_BONUS = 0.05
CURATED_EXTRA = 550  # curated items read beyond the list's length (pinned first)


def version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("requested_by").defer("artifact")


def items_filtered(*, filters: Filters) -> QuerySet[Item]:
    """Visible items passing the hard filters (the chat's SQL filter tool calls this)."""
    return filters.apply(Item.objects.all())


def _final(entry: Ranked) -> float:
    """An entry's place in a list: its score plus the curation's bonuses."""
    item, score, _src, _c = entry
    return score + BOOST_SCALE * item.boost + (FEATURED_BONUS if item.is_featured else 0.0)


@RECOMMENDATION_DURATION.time()
@one_blas_thread
def recommendations_for_user(
    *,
    user,
    n: int = 20,
    filters: Filters | None = None,
    version: ModelVersion | None = None,
    history: History | None = None,
    user_vector: np.ndarray | None = None,
    user_candidates: Candidates | None = None,
) -> list[Recommendation]:
    """The user's personal list: seen, dismissed, hidden and filtered-out items never appear.

    Pinned items (that pass the filters and are new to the user) come first; the rest are
    ranked by model score (normalised to the top score) plus featured/boost bonuses. A user
    without a usable history, or a site without a trained model, gets popular items.
    ``history``: the user's, when the caller has just read it (``user_history_ids``);
    ``user_vector``: their vector for a factor ``version``, when read with it, and
    ``user_candidates``: that vector's stored candidates.

    Ranking and evidence read light rows (:class:`ItemFacts`) of the candidates, the curated
    items and the user's favourites in one query, the candidates' full rows with them (a
    curated item or a popular one filling the list brings its row in a query of its own).
    """
    n = max(1, min(int(n), 100))
    filters = filters or Filters()
    version = version or version_active()
    if history is None:
        history = user_history_ids(user_id=user.pk)
    history = history_for_version(history, version)
    excluded = history.excluded  # a new set: the filters' exclusions join it in place
    excluded.update(filters.exclude_ids)
    profile = history.liked[:PROFILE_ITEMS]
    catalog_state = serving_state()[1]
    # the favourites' profile kept from an earlier request leaves their rows out of the facts'
    # query; a short history's rows are still read: its genre-coherence term reads them
    known = profile_cached(ids=profile, catalog_state=catalog_state)
    if known is not None and not short_history_policy().applies(len(history.liked)):
        profile = [i for i in profile if i not in known.labels]

    # items CF cannot score yet, close in text to the user's favourites
    cold = cold_items_for_list(
        liked=history.liked, excluded=excluded, filters=filters, version=version, n=n
    )
    cold_ids = [c.item_id for c in cold]
    facts: dict[int, ItemFacts] = {}
    curated: list[ItemFacts] = []

    def read_facts(ids: Iterable[int], first: bool, rows: Iterable[int]) -> None:
        new_facts, new_curated = item_facts(
            ids=[i for i in ids if i not in facts],
            filters=filters,
            curated=n + CURATED_EXTRA if first else 0,
            rows=rows,
            catalog_state=catalog_state,
        )
        facts.update(new_facts)
        curated.extend(new_curated)

    ranked: list[Ranked] = []
    in_list: set[int] = set()  # the entries scored by the model
    # a factor model's evidence is worked out for the items listed only (it does not rank them)
    factors = version is not None and version.serving == ModelVersion.Serving.FACTORS
    if version is not None and history.liked:
        # a pool a little larger than asked; grown when hard filters reject most of it
        pool = max(60, n * 3)
        first = True
        while True:
            if factors:
                scored = score_factors(
                    version, user.pk, history, pool, excluded, user_vector, user_candidates, False
                )
            else:
                scored = score_neighbours(version, history, pool, excluded)
            keep = [i for i in scored.item_ids.tolist() if i not in excluded]
            contributors = {
                h
                for c in scored.contributions.values()
                for h, _ in c
                if h != -1 and (known is None or h not in known.labels)
            }
            if first:
                read_facts([*keep, *cold_ids, *profile, *contributors], True, [*keep, *cold_ids])
            else:
                read_facts(keep, False, keep)
            first = False
            # (an item deleted since training has no row: it is skipped)
            allowed = sum(1 for i in keep if (f := facts.get(i)) is not None and f.passes)
            if allowed >= n or len(scored.item_ids) < pool or pool >= 20_000:
                break
            pool *= 8
        normalised = _pool_scores(scored, history, facts)
        for item_id, score in zip(scored.item_ids.tolist(), normalised.tolist(), strict=True):
            fact = facts.get(item_id)
            if fact is not None and fact.passes and item_id not in excluded:
                ranked.append((fact, score, "cf", scored.contributions.get(item_id)))
                in_list.add(item_id)
        # boosted and featured items compete with their own model score, wherever they rank
        for fact in curated:
            if (
                (fact.is_featured or fact.boost)
                and fact.pk not in excluded
                and fact.pk not in in_list
            ):
                ranked.append((fact, 0.0, "cf", None))
    else:
        read_facts([*cold_ids, *profile], True, cold_ids)
    if len(ranked) < n:
        have = {entry[0].pk for entry in ranked}
        fill = popular_fill(version, filters, excluded | have, n - len(ranked))
        below = min((_final(entry) for entry in ranked), default=None)
        for item, score in zip(fill, fill_scores(len(fill), below=below), strict=True):
            ranked.append((item, score, "popular", None))
    curated_ids = {f.pk for f in curated}
    cold = [c for c in cold if c.item_id not in curated_ids]
    if cold:
        cold_rows = {c.item_id: facts[c.item_id] for c in cold if c.item_id in facts}
        ranked = mix_cold_items(ranked, cold=cold, items=cold_rows)

    pinned = [p for p in curated if p.is_pinned and p.pk not in excluded][:n]
    pinned_ids = {p.pk for p in pinned}

    rest = sorted((e for e in ranked if e[0].pk not in pinned_ids), key=_final, reverse=True)
    ordered = [(p, 1.0 + BOOST_SCALE * p.boost, "curated", None) for p in pinned] + [
        (e[0], _final(e), e[2], e[3]) for e in rest
    ][:n]
    if factors:
        scored_ids = [e[0].pk for e in ordered if e[2] == "cf" and e[0].pk in in_list]
        parts = factor_contributions(version, history, np.array(scored_ids, dtype=np.int64))
        ordered = [
            (i, s, src, parts.get(i.pk) if src == "cf" and i.pk in in_list else c)
            for i, s, src, c in ordered
        ]
    return recommendations_build(
        _with_rows(ordered, filters), history, facts=facts, catalog_state=catalog_state
    )


def short_history_policy() -> ShortHistory:
    """The genre-coherence term for short histories, from the settings."""
    return ShortHistory(
        strength=float(getattr(settings, "RECOMMENDER_GENRE_COHERENCE", 0.0)),
        max_history=int(getattr(settings, "RECOMMENDER_SHORT_HISTORY", 10)),
    )


def _pool_scores(scored: Scored, history: History, facts: dict[int, ItemFacts]) -> np.ndarray:
    """The pool's scores normalised to the best one; for a short history, plus the
    genre-coherence term (``coherence.rerank``, the function the few-shot evaluation runs)."""
    policy = short_history_policy()
    strength = policy.strength if policy.applies(len(history.liked)) else 0.0

    def genres(ids: Iterable[int]) -> list[list[str]]:
        return [facts[i].genres if i in facts else [] for i in ids]

    return coherence.rerank(
        scored.scores,
        genres(scored.item_ids.tolist()) if strength else [],
        genres(history.liked) if strength else [],
        strength,
    )


def _with_rows(ordered: Sequence[Ranked], filters: Filters) -> list[Ranked]:
    """The entries with their full Item rows: read with their facts (which say whether the row
    passed the filters in that statement), else in one query, which drops an item hidden since
    its facts were read."""
    wanted = [e[0].pk for e in ordered if isinstance(e[0], ItemFacts) and e[0].rest is None]
    rows = {i.pk: i for i in filters.apply(Item.objects.filter(pk__any=wanted))} if wanted else {}
    out: list[Ranked] = []
    for item, score, source, contribs in ordered:
        if isinstance(item, ItemFacts):
            if item.rest is not None:
                row = item_row(item) if item.passes else None
            else:
                row = rows.get(item.pk)
            if row is None:
                continue
            item = row
        out.append((item, score, source, contribs))
    return out


def popular_items(
    *, n: int = 20, filters: Filters | None = None, exclude: Iterable[int] = ()
) -> list[Recommendation]:
    n = max(1, min(int(n), 100))
    filters = filters or Filters()
    items = popular_fill(version_active(), filters, set(exclude) | set(filters.exclude_ids), n)
    return recommendations_build(
        [
            (it, score, "popular", None)
            for it, score in zip(items, fill_scores(len(items)), strict=True)
        ],
        History.of_liked([]),
    )


def onboarding_items(*, n: int = 24) -> list[Item]:
    """A varied, popular selection for a new user to pick favourites from: the most popular items
    of each genre in turn, so the picks span the catalog rather than one blockbuster genre."""
    version = version_active()
    pool = popular_fill(version, Filters(), set(), max(n * 8, 200))
    chosen: list[Item] = []
    used_genres: Counter = Counter()
    for item in pool:
        main = item.genres[0] if item.genres else ""
        if used_genres[main] < max(2, n // 8):
            chosen.append(item)
            used_genres[main] += 1
        if len(chosen) >= n:
            break
    for item in pool:  # top up if the genres ran out
        if len(chosen) >= n:
            break
        if item not in chosen:
            chosen.append(item)
    return chosen


@one_blas_thread
def recommendation_for_item(*, user, item: Item) -> Recommendation:
    """Why this item would be recommended to this user (the item page's explanation)."""
    version = version_active()
    history = history_for_version(user_history_ids(user_id=user.pk), version)
    contributions = None
    score = 0.0
    if version is not None and history.liked:
        if version.serving == ModelVersion.Serving.FACTORS:
            score = score_factor_item(version, user.pk, history, item.pk)
            contributions = factor_contributions(version, history, np.array([item.pk])).get(item.pk)
        else:
            score, contributions = explain_neighbours(version, history, item.pk)
    source = "cf" if contributions else "popular"
    return recommendations_build([(item, score, source, contributions)], history)[0]
