"""The recommender's public reads: a user's list, similar items, popular items, the item page's
"why", the versions. Pages, the API and the chat call these.

Every result is a :class:`recommender.types.Recommendation` with the evidence of the explanation
contract. Serving reads the *active* model version (``storage``), scores the user's history
(``history``, ``scoring``), mixes in items only their text can place (``embeddings.coldstart``),
applies the list's policy below and explains each item (``evidence``).

Curation is read live from the catalog: hidden items never appear, pinned items go first,
featured and boosted items move up; none of it needs a retrain.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet
from django.db.models.signals import post_save

from catalog.models import Item
from catalog.selectors import catalog_fingerprint, items_in_popularity_order
from catalog.signals import items_changed, items_curated
from recsite.metrics import RECOMMENDATION_DURATION

from . import coherence, storage
from .coherence import ShortHistory
from .embeddings.coldstart import cold_items_for_list, mix_cold_items
from .evidence import (
    PROFILE_ITEMS,
    ItemFacts,
    Ranked,
    item_facts,
    item_row,
    recommendations_build,
)
from .history import History, history_for_version, user_history_ids
from .models import ModelVersion
from .reasons import reason_for
from .scoring import (
    Scored,
    explain_neighbours,
    factor_contributions,
    one_blas_thread,
    score_factor_item,
    score_factors,
    score_neighbours,
)
from .types import Evidence, Filters, Recommendation

__all__ = [
    "History",
    "items_filtered",
    "onboarding_items",
    "popular_items",
    "recommendation_for_item",
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


def version_active() -> ModelVersion | None:
    """The serving version (its pickled artifact, which only the fold-in reads, left deferred)."""
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).defer("artifact").first()


# The active version and the catalog's fingerprint, shared by every request of this process for
# API_SERVING_STATE_SECONDS (default 1 s): saves two queries per list, one of them a scan of the
# items. A change made in this process (curation, item edits, a version saved) clears it at
# once; other processes see a change within that time.
_serving: dict = {"expires": 0.0, "value": None}
_serving_lock = threading.Lock()


def serving_state() -> tuple[ModelVersion | None, str]:
    """(the active model version, the catalog's fingerprint), as of at most a second ago."""
    ttl = float(settings.API_SERVING_STATE_SECONDS)
    now = time.monotonic()
    with _serving_lock:
        if _serving["value"] is not None and now < _serving["expires"]:
            return _serving["value"]
    value = (version_active(), catalog_fingerprint())
    with _serving_lock:
        _serving.update(value=value, expires=now + ttl)
    return value


def serving_state_forget(**kwargs) -> None:  # noqa: ANN003 (signal receiver)
    with _serving_lock:
        _serving.update(value=None, expires=0.0)


items_curated.connect(serving_state_forget, dispatch_uid="recommender.serving.curated")
items_changed.connect(serving_state_forget, dispatch_uid="recommender.serving.changed")
post_save.connect(serving_state_forget, sender=ModelVersion, dispatch_uid="recommender.serving.ver")


def version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("requested_by").defer("artifact")


def items_filtered(*, filters: Filters) -> QuerySet[Item]:
    """Visible items passing the hard filters (the chat's SQL filter tool calls this)."""
    return filters.apply(Item.objects.all())


def _popularity(
    version: ModelVersion | None, filters: Filters, exclude: set[int], n: int
) -> list[Item]:
    """Most-interacted items passing the filters: the version's training counts first, then the
    catalog's live order for the items the version does not know."""
    qs = filters.apply(Item.objects.all()).exclude(pk__in=exclude)
    ids: list[int] = []
    if version is not None:
        ids = storage.popular_item_ids(version=version, items=qs, n=n)
    if len(ids) < n:
        known = set(ids)
        rest = (i for i in items_in_popularity_order(qs) if i not in known)
        ids += [i for _, i in zip(range(n - len(ids)), rest, strict=False)]
    items = Item.objects.in_bulk(ids)
    return [items[i] for i in ids if i in items]


def _fill_scores(count: int, *, below: float | None = None) -> list[float]:
    """Scores of ``count`` popular items that fill a list, in popularity order.

    Alone in a list they score 0.5 / (position + 2). Under a list's scored entries (``below``:
    the weakest of them) they rank beneath all of them: a model's score for this user, however
    weak, says more than popularity does, which matters under a filter few items pass, where
    the CF matches are few and weak.
    """
    base = [0.5 / (pos + 2) for pos in range(count)]
    if below is None:
        return base
    if below > 0:
        return [below * b for b in base]
    return [below - 1.0 + b for b in base]


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
) -> list[Recommendation]:
    """The user's personal list: seen, dismissed, hidden and filtered-out items never appear.

    Pinned items (that pass the filters and are new to the user) come first; the rest are
    ranked by model score (normalised to the top score) plus featured/boost bonuses. A user
    without a usable history, or a site without a trained model, gets popular items.
    ``history``: the user's, when the caller has just read it (``user_history_ids``).

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
    excluded = history.excluded | set(filters.exclude_ids)
    profile = history.liked[:PROFILE_ITEMS]

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
        )
        facts.update(new_facts)
        curated.extend(new_curated)

    ranked: list[Ranked] = []
    if version is not None and history.liked:
        # a pool a little larger than asked; grown when hard filters reject most of it
        pool = max(60, n * 3)
        first = True
        while True:
            if version.serving == ModelVersion.Serving.FACTORS:
                scored = score_factors(version, user.pk, history, pool, excluded)
            else:
                scored = score_neighbours(version, history, pool, excluded)
            keep = [i for i in scored.item_ids.tolist() if i not in excluded]
            contributors = {h for c in scored.contributions.values() for h, _ in c if h != -1}
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
        in_list: set[int] = set()
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
        fill = _popularity(version, filters, excluded | have, n - len(ranked))
        below = min((_final(entry) for entry in ranked), default=None)
        for item, score in zip(fill, _fill_scores(len(fill), below=below), strict=True):
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
    ]
    return recommendations_build(_with_rows(ordered[:n], filters), history, facts=facts)


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


# An item's nearest vectors depend only on the model version: cached per (version, item), so a
# new version is a new key and nothing needs invalidating. Hidden, seen and filtered items are
# left out after the cache, per request.
SIMILAR_POOL = 100
SIMILAR_CACHE_SECONDS = 3600


def similar_vector_pairs(
    *, version: ModelVersion, item_id: int, n: int, excluded: set[int]
) -> list[tuple[int, float]]:
    """(item id, cosine similarity) of the items nearest this one in a factor version, outside
    ``excluded``: from the cached pool of SIMILAR_POOL, or, when the excluded items eat it, from
    a search wide enough to skip them (not cached: it is one user's)."""
    key = f"recommender:similar:v{version.pk}:{version.created_at.timestamp()}:{int(item_id)}"
    pairs = cache.get(key)
    if pairs is None:
        pairs = storage.similar_by_vector(version=version, item_id=item_id, limit=SIMILAR_POOL)
        cache.set(key, pairs, SIMILAR_CACHE_SECONDS)
    kept = [(i, w) for i, w in pairs if i not in excluded]
    if len(kept) >= n or len(pairs) < SIMILAR_POOL:
        return kept
    wide = storage.similar_by_vector(version=version, item_id=item_id, limit=n + len(excluded) + 20)
    return [(i, w) for i, w in wide if i not in excluded]


def similar_neighbour_pairs(*, version: ModelVersion, item_id: int) -> list[tuple[int, float]]:
    """(item id, similarity) of an item's neighbour list in a neighbour version, best first;
    cached like the factor versions' pools (a version's lists never change)."""
    key = f"recommender:neighbours:v{version.pk}:{version.created_at.timestamp()}:{int(item_id)}"
    pairs = cache.get(key)
    if pairs is None:
        pairs = []
        for _id, packed_ids, packed_w in storage.neighbour_rows(
            version=version, item_ids=[item_id]
        ):
            if packed_ids:
                ids, w = storage.unpack_neighbors(packed_ids, packed_w)
                pairs = sorted(zip(ids.tolist(), w.tolist(), strict=True), key=lambda p: -p[1])
        cache.set(key, pairs, SIMILAR_CACHE_SECONDS)
    return pairs


class _SimilarRows:
    """The full rows of an item's similar items that pass the request's filters, kept per
    (version, item, filters, catalog fingerprint): every user asking for the same item and
    filters reads the same rows. Any item added, edited, hidden, curated or deleted changes the
    catalog's fingerprint (``serving_state``), hence the key; seen and dismissed items are left
    out after it, per request. An entry grows as requests need rows further down the list."""

    def __init__(self, key: str, filters: Filters) -> None:
        self.key = key
        self.filters = filters
        # id -> its row, or None: the item fails the filters (or is hidden, or gone)
        self.known: dict[int, Item | None] = cache.get(key) or {}

    def read(self, ids: list[int]) -> dict[int, Item]:
        missing = [i for i in ids if i not in self.known]
        if missing:
            found = self.filters.apply(Item.objects.filter(pk__in=missing)).in_bulk()
            self.known.update({i: found.get(i) for i in missing})
            cache.set(self.key, self.known, SIMILAR_CACHE_SECONDS)
        return {i: row for i in ids if (row := self.known.get(i)) is not None}


def _similar_rows(*, version: ModelVersion | None, item_id: int, filters: Filters) -> _SimilarRows:
    state = serving_state()[1]
    stamp = f"{version.pk}:{version.created_at.timestamp()}" if version is not None else "none"
    digest = hashlib.sha1(repr((state, filters)).encode()).hexdigest()
    return _SimilarRows(f"recommender:similar-rows:{stamp}:{int(item_id)}:{digest}", filters)


def similar_items(
    *,
    item: Item,
    n: int = 10,
    user=None,
    filters: Filters | None = None,
    version: ModelVersion | None = None,
) -> list[Recommendation]:
    """Items like this one, from the active model (its neighbour list or nearest vectors).

    With a user: their seen and dismissed items are left out and the evidence also names the
    genres they share with the user's favourites.
    """
    n = max(1, min(int(n), 100))
    filters = filters or Filters()
    version = version or serving_state()[0]  # given by callers that show its id
    history = (
        user_history_ids(user_id=user.pk) if user is not None and user.is_authenticated else None
    )
    excluded = {item.pk} | (history.excluded if history else set()) | set(filters.exclude_ids)
    pairs: list[tuple[int, float]] = []
    if version is not None:
        if version.serving == ModelVersion.Serving.FACTORS:
            # 3n: room for the filters (genre, year) applied below
            pairs = similar_vector_pairs(
                version=version, item_id=item.pk, n=3 * n, excluded=excluded
            )
        else:
            pairs = similar_neighbour_pairs(version=version, item_id=item.pk)
    candidates = [(i, w) for i, w in pairs if i not in excluded]
    # the filters are checked on the first few candidates (full rows for 3n, not the whole pool);
    # the rest are read only when those fall short
    head = candidates[: 3 * n]
    rows = _similar_rows(version=version, item_id=item.pk, filters=filters)
    allowed = rows.read([i for i, _ in head])
    if len(allowed) < n and len(candidates) > len(head):
        allowed |= rows.read([i for i, _ in candidates[len(head) :]])
    top = candidates[0][1] if candidates and candidates[0][1] > 0 else 1.0
    ordered = [(allowed[i], w / top, "cf", [(item.pk, w)]) for i, w in candidates if i in allowed][
        :n
    ]
    if len(ordered) < n:  # e.g. an item nobody has interacted with yet: same genres, popular
        same_genre = replace(
            filters, genres=tuple(item.genres) or filters.genres, exclude_ids=frozenset()
        )
        have = excluded | {i.pk for i, *_ in ordered}
        fill = _popularity(version, same_genre, have, n - len(ordered))
        below = min((score for _i, score, *_ in ordered), default=None)
        for other, score in zip(fill, _fill_scores(len(fill), below=below), strict=True):
            ordered.append((other, score, "popular", None))
    liked = History.of_liked(history.liked if history else [])
    reference_liked = history is not None and item.pk in set(history.liked)
    # The reference item is "history" only if this user liked it; otherwise the evidence is
    # what other users did: people who liked it also liked these.
    ordered = [
        (other, score, source, contribs if reference_liked else None)
        for other, score, source, contribs in ordered
    ]
    # the reference item is the one history item the evidence may name: its row is at hand
    known = {
        item.pk: ItemFacts(
            item.pk,
            item.title,
            item.year,
            item.genres,
            item.tags,
            item.is_pinned,
            item.is_featured,
            item.boost,
            True,
        )
    }
    recs = recommendations_build(ordered, liked, facts=known, catalog_state=serving_state()[1])
    for rec, (_other, score, source, _c) in zip(recs, ordered, strict=True):
        if source == "cf" and not reference_liked:
            rec.evidence.insert(
                0,
                Evidence(
                    "similar_users",
                    f"People who liked {item} also liked this",
                    round(float(score), 4),
                    item_id=item.pk,
                ),
            )
        shared = sorted(set(rec.item.genres) & set(item.genres))
        if shared:
            rec.evidence.append(
                Evidence(
                    "shared_attribute",
                    f"same genre as {item}: {', '.join(shared)}",
                    float(len(shared)),
                )
            )
        rec.reason = reason_for(rec)
    return recs


def popular_items(
    *, n: int = 20, filters: Filters | None = None, exclude: Iterable[int] = ()
) -> list[Recommendation]:
    n = max(1, min(int(n), 100))
    filters = filters or Filters()
    items = _popularity(version_active(), filters, set(exclude) | set(filters.exclude_ids), n)
    return recommendations_build(
        [
            (it, score, "popular", None)
            for it, score in zip(items, _fill_scores(len(items)), strict=True)
        ],
        History.of_liked([]),
    )


def onboarding_items(*, n: int = 24) -> list[Item]:
    """A varied, popular selection for a new user to pick favourites from: the most popular items
    of each genre in turn, so the picks span the catalog rather than one blockbuster genre."""
    version = version_active()
    pool = _popularity(version, Filters(), set(), max(n * 8, 200))
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
