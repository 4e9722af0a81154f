"""Reads the pages, the API and the chat call: recommendations, similar items, popular items.

Every result is a :class:`recommender.types.Recommendation` with the evidence of the explanation
contract. Serving reads the *active* model version's rows in PostgreSQL:

* neighbour models (the default, EASE-family, item-kNN): each item's outgoing top-K item-item
  weights; a user's scores are the sum of the rows of their history items, computed in numpy
  from one indexed query. The per-item contributions *are* the explanation (``history_item``).
* factor models (ALS, BPR): item vectors in pgvector, searched by inner product (HNSW index when
  the catalog is large, exact otherwise); the user's vector is refreshed after each interaction.

Curation is read live from the catalog: hidden items never appear, pinned items go first,
featured and boosted items move up; none of it needs a retrain.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.db.models import Count, Q, QuerySet

from catalog.models import Interaction, Item

from .models import ModelVersion, UserVector, VersionItem
from .reasons import reason_for
from .types import Evidence, Filters, Recommendation

POSITIVE_KINDS = (Interaction.Kind.RATING, Interaction.Kind.LIKE)
# A rating below this is a signal the user did not enjoy the item: it is still "seen" (never
# recommended again) but it does not pull similar items up.
LIKED_RATING = 3.0
BOOST_SCALE = 0.1  # final = score / top score + BOOST_SCALE * boost
FEATURED_BONUS = 0.05
MAX_EVIDENCE_ITEMS = 3


# --- the active version ---------------------------------------------------------------------------


def version_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()


def version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("requested_by").defer("artifact")


# --- the user's history ---------------------------------------------------------------------------


@dataclass
class History:
    liked: list[int]  # positive items, most recent first (ratings >= LIKED_RATING and likes)
    seen: set[int]  # everything rated or liked (never recommended again)
    dismissed: set[int]
    weights: dict[int, float]  # per liked item: how much it counts (rating-scaled)

    @property
    def excluded(self) -> set[int]:
        return self.seen | self.dismissed


def user_history_ids(*, user_id: int) -> History:
    rows = Interaction.objects.filter(user_id=user_id).order_by("-timestamp", "-id")
    liked: list[int] = []
    seen: set[int] = set()
    dismissed: set[int] = set()
    weights: dict[int, float] = {}
    for item_id, kind, value in rows.values_list("item_id", "kind", "value"):
        if kind == Interaction.Kind.DISMISS:
            dismissed.add(item_id)
        elif kind in POSITIVE_KINDS:
            seen.add(item_id)
            positive = kind == Interaction.Kind.LIKE or (
                value is not None and value >= LIKED_RATING
            )
            if positive and item_id not in weights:
                liked.append(item_id)
                weights[item_id] = 1.0
    # a dismissal wins over an old rating of the same item
    liked = [i for i in liked if i not in dismissed]
    return History(liked=liked, seen=seen, dismissed=dismissed, weights=weights)


# --- filtering ---------------------------------------------------------------------------------


def _filtered(qs: QuerySet[Item], filters: Filters) -> QuerySet[Item]:
    qs = qs.filter(is_hidden=False)
    if filters.genres:
        qs = qs.filter(genres__overlap=list(filters.genres))
    if filters.exclude_genres:
        qs = qs.exclude(genres__overlap=list(filters.exclude_genres))
    if filters.year_min is not None:
        qs = qs.filter(year__gte=filters.year_min)
    if filters.year_max is not None:
        qs = qs.filter(year__lte=filters.year_max)
    if filters.exclude_ids:
        qs = qs.exclude(pk__in=filters.exclude_ids)
    if filters.include_ids is not None:
        qs = qs.filter(pk__in=filters.include_ids)
    return qs


# --- scoring --------------------------------------------------------------------------------------


@dataclass
class _Scored:
    item_ids: np.ndarray  # candidate ids, best first
    scores: np.ndarray
    contributions: dict[int, list[tuple[int, float]]]  # candidate -> [(history item, weight)]
    source: str


def _score_neighbors(version: ModelVersion, history: History, limit: int) -> _Scored:
    rows = VersionItem.objects.filter(version=version, item_id__in=history.liked).values_list(
        "item_id", "neighbors", "weights"
    )
    sources, targets, weights = [], [], []
    for item_id, neighbors, w in rows:
        if not neighbors:
            continue
        sources.append(np.full(len(neighbors), item_id, dtype=np.int64))
        targets.append(np.asarray(neighbors, dtype=np.int64))
        weights.append(np.asarray(w, dtype=np.float64) * history.weights.get(item_id, 1.0))
    if not targets:
        return _Scored(np.empty(0, np.int64), np.empty(0), {}, "cf")
    src = np.concatenate(sources)
    tgt = np.concatenate(targets)
    wts = np.concatenate(weights)
    uniq, inverse = np.unique(tgt, return_inverse=True)
    scores = np.bincount(inverse, weights=wts, minlength=len(uniq))
    order = np.argsort(-scores, kind="stable")
    top = order[: max(limit, 1)]
    top_ids = uniq[top]
    top_scores = scores[top]
    # contributions of each history item to each kept candidate
    keep = np.isin(tgt, top_ids)
    contributions: dict[int, list[tuple[int, float]]] = {}
    for s, t, w in zip(src[keep].tolist(), tgt[keep].tolist(), wts[keep].tolist(), strict=True):
        contributions.setdefault(t, []).append((s, w))
    return _Scored(top_ids, top_scores, contributions, "cf")


def _user_vector(version: ModelVersion, user_id: int, history: History) -> np.ndarray | None:
    from . import services  # fold-in lives with the writes

    row = UserVector.objects.filter(version=version, user_id=user_id).values_list("vector").first()
    if row is not None:
        return np.asarray(row[0], dtype=np.float32)
    return services.user_vector_compute(version=version, item_ids=history.liked)


def _score_factors(version: ModelVersion, user_id: int, history: History, limit: int) -> _Scored:
    vector = _user_vector(version, user_id, history)
    if vector is None:
        return _Scored(np.empty(0, np.int64), np.empty(0), {}, "cf")
    dim = int(version.dimensions or len(vector))
    literal = "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"
    with connection.cursor() as cursor:
        if version.indexed:
            cursor.execute("SET LOCAL hnsw.ef_search = %s", [max(40, min(limit, 1000))])
        cursor.execute(
            f"SELECT item_id, -(vector::vector({dim}) <#> %s::vector({dim})) AS score"
            f" FROM recommender_versionitem WHERE version_id = %s"
            f" ORDER BY vector::vector({dim}) <#> %s::vector({dim}) LIMIT %s",
            [literal, version.pk, literal, limit + len(history.excluded)],
        )
        rows = cursor.fetchall()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    scores = np.array([r[1] for r in rows], dtype=np.float64)
    contributions = _factor_contributions(version, history, ids[:limit])
    return _Scored(ids, scores, contributions, "cf")


def _factor_contributions(
    version: ModelVersion, history: History, candidates: np.ndarray
) -> dict[int, list[tuple[int, float]]]:
    """For vector models: the history items whose vectors are closest to each candidate's."""
    liked = history.liked[:200]
    if not liked or len(candidates) == 0:
        return {}
    rows = dict(
        VersionItem.objects.filter(
            version=version, item_id__in=list(liked) + candidates.tolist()
        ).values_list("item_id", "vector")
    )
    h_ids = [i for i in liked if rows.get(i) is not None]
    if not h_ids:
        return {}
    H = np.stack([np.asarray(rows[i], dtype=np.float32) for i in h_ids])
    H /= np.linalg.norm(H, axis=1, keepdims=True) + 1e-9
    out: dict[int, list[tuple[int, float]]] = {}
    for c in candidates.tolist():
        if rows.get(c) is None:
            continue
        v = np.asarray(rows[c], dtype=np.float32)
        sims = H @ (v / (np.linalg.norm(v) + 1e-9))
        best = np.argsort(-sims)[:MAX_EVIDENCE_ITEMS]
        out[c] = [(h_ids[b], float(sims[b])) for b in best if sims[b] > 0]
    return out


def _popularity(
    version: ModelVersion | None, filters: Filters, exclude: set[int], n: int
) -> list[Item]:
    """Most-interacted items passing the filters: the version's counts, else live counts."""
    qs = _filtered(Item.objects.all(), filters).exclude(pk__in=exclude)
    result: list[Item] = []
    if version is not None:
        ids = list(
            VersionItem.objects.filter(version=version, popularity__gt=0, item__in=qs)
            .order_by("-popularity", "item_id")
            .values_list("item_id", flat=True)[:n]
        )
        items = Item.objects.in_bulk(ids)
        result = [items[i] for i in ids if i in items]
        if len(result) >= n:
            return result
        qs = qs.exclude(pk__in=ids)
    live = qs.annotate(_n=Count("interactions", filter=Q(interactions__kind__in=POSITIVE_KINDS)))
    return result + list(live.order_by("-_n", "title")[: n - len(result)])


# --- evidence ---------------------------------------------------------------------------------------


def _attribute_profile(history_items: Sequence[Item]) -> tuple[Counter, Counter]:
    genres: Counter = Counter()
    tags: Counter = Counter()
    for item in history_items:
        genres.update(set(item.genres))
        tags.update({t.lower() for t in item.tags})
    return genres, tags


def _evidence_for(
    item: Item,
    contributions: list[tuple[int, float]] | None,
    titles: dict[int, str],
    genres: Counter,
    tags: Counter,
    source: str,
) -> list[Evidence]:
    evidence: list[Evidence] = []
    if item.is_pinned:
        evidence.append(Evidence("curated", "Pinned by staff", 1.0))
    elif item.is_featured:
        evidence.append(Evidence("curated", "Featured by staff", 1.0))
    elif item.boost:
        evidence.append(Evidence("curated", "Boosted by staff", float(item.boost)))
    if contributions:
        total = sum(w for _, w in contributions if w > 0) or 1.0
        best = sorted(contributions, key=lambda c: -c[1])[:MAX_EVIDENCE_ITEMS]
        for h, w in best:
            if w > 0 and h in titles:
                evidence.append(Evidence("history_item", titles[h], round(w / total, 4), item_id=h))
    for genre in sorted(set(item.genres), key=lambda g: -genres[g])[:2]:
        if genres[genre] > 0:
            evidence.append(Evidence("shared_attribute", f"genre: {genre}", float(genres[genre])))
    shared_tags = [t for t in {t.lower() for t in item.tags} if tags[t] > 0]
    for tag in sorted(shared_tags, key=lambda t: -tags[t])[:2]:
        evidence.append(Evidence("shared_attribute", f"tag: {tag}", float(tags[tag])))
    if source == "popular" and not any(e.kind == "curated" for e in evidence):
        evidence.append(Evidence("similar_users", "Popular with many users", 1.0))
    return evidence


# --- public selectors ------------------------------------------------------------------------------


def recommendations_for_user(
    *,
    user,
    n: int = 20,
    filters: Filters | None = None,
    version: ModelVersion | None = None,
) -> list[Recommendation]:
    """The user's personal list: seen, dismissed, hidden and filtered-out items never appear.

    Pinned items (that pass the filters and are new to the user) come first; the rest are
    ranked by model score (normalised to the top score) plus featured/boost bonuses. A user
    without a usable history, or a site without a trained model, gets popular items.
    """
    n = max(1, min(int(n), 100))
    filters = filters or Filters()
    version = version or version_active()
    history = user_history_ids(user_id=user.pk)
    excluded = history.excluded | set(filters.exclude_ids)

    scored = None
    if version is not None and history.liked:
        pool = max(300, n * 15) + len(excluded)
        if version.serving == ModelVersion.Serving.FACTORS:
            scored = _score_factors(version, user.pk, history, pool)
        else:
            scored = _score_neighbors(version, history, pool)

    ranked: list[tuple[Item, float, str, list[tuple[int, float]] | None]] = []
    if scored is not None and len(scored.item_ids):
        keep = [i for i in scored.item_ids.tolist() if i not in excluded]
        allowed = _filtered(Item.objects.filter(pk__in=keep), filters).in_bulk()
        top = float(scored.scores[0]) if len(scored.scores) and scored.scores[0] > 0 else 1.0
        for item_id, score in zip(scored.item_ids.tolist(), scored.scores.tolist(), strict=True):
            item = allowed.get(item_id)
            if item is not None:
                ranked.append((item, score / top, "cf", scored.contributions.get(item_id)))
    if len(ranked) < n:
        have = {it.pk for it, *_ in ranked}
        for pos, item in enumerate(_popularity(version, filters, excluded | have, n - len(ranked))):
            ranked.append((item, 0.5 / (pos + 2), "popular", None))
    if history.liked:  # items CF cannot score yet, close in text to the user's favourites
        from .embeddings.selectors import mix_cold_items

        ranked = mix_cold_items(
            ranked, liked=history.liked, excluded=excluded, filters=filters, version=version, n=n
        )

    pinned = list(
        _filtered(Item.objects.filter(is_pinned=True), filters).exclude(pk__in=excluded)[:n]
    )
    pinned_ids = {p.pk for p in pinned}

    def final(entry) -> float:
        item, score, _src, _c = entry
        return score + BOOST_SCALE * item.boost + (FEATURED_BONUS if item.is_featured else 0.0)

    rest = sorted((e for e in ranked if e[0].pk not in pinned_ids), key=final, reverse=True)
    ordered = [(p, 1.0 + BOOST_SCALE * p.boost, "curated", None) for p in pinned] + [
        (e[0], final(e), e[2], e[3]) for e in rest
    ]
    ordered = ordered[:n]
    return _build(ordered, history)


def _build(
    ordered: Sequence[tuple[Item, float, str, list[tuple[int, float]] | None]], history: History
) -> list[Recommendation]:
    needed = set(history.liked[:300])
    for _item, _s, _src, contribs in ordered:
        needed.update(h for h, _ in contribs or [])
    history_items = list(
        Item.objects.filter(pk__in=needed).only("id", "title", "year", "genres", "tags")
    )
    titles = {i.pk: str(i) for i in history_items}
    liked_set = set(history.liked[:300])
    genres, tags = _attribute_profile([i for i in history_items if i.pk in liked_set])
    out: list[Recommendation] = []
    for rank, (item, score, source, contribs) in enumerate(ordered, start=1):
        evidence = _evidence_for(item, contribs, titles, genres, tags, source)
        rec = Recommendation(
            item=item, rank=rank, score=float(score), source=source, evidence=evidence
        )
        rec.reason = reason_for(rec)
        out.append(rec)
    return out


def similar_items(
    *, item: Item, n: int = 10, user=None, filters: Filters | None = None
) -> list[Recommendation]:
    """Items like this one, from the active model (its neighbour list or nearest vectors).

    With a user: their seen and dismissed items are left out and the evidence also names the
    genres they share with the user's favourites.
    """
    n = max(1, min(int(n), 100))
    filters = filters or Filters()
    version = version_active()
    history = (
        user_history_ids(user_id=user.pk) if user is not None and user.is_authenticated else None
    )
    excluded = {item.pk} | (history.excluded if history else set()) | set(filters.exclude_ids)
    pairs: list[tuple[int, float]] = []
    if version is not None:
        if version.serving == ModelVersion.Serving.FACTORS:
            pairs = _similar_by_vector(version, item, n + len(excluded) + 20)
        else:
            row = (
                VersionItem.objects.filter(version=version, item=item)
                .values_list("neighbors", "weights")
                .first()
            )
            if row and row[0]:
                pairs = sorted(zip(row[0], row[1], strict=True), key=lambda p: -p[1])
    candidates = [(i, w) for i, w in pairs if i not in excluded]
    allowed = _filtered(Item.objects.filter(pk__in=[i for i, _ in candidates]), filters).in_bulk()
    top = candidates[0][1] if candidates and candidates[0][1] > 0 else 1.0
    ordered = [(allowed[i], w / top, "cf", [(item.pk, w)]) for i, w in candidates if i in allowed][
        :n
    ]
    if len(ordered) < n:  # e.g. an item nobody has interacted with yet: same genres, popular
        same_genre = Filters(
            genres=tuple(item.genres) or filters.genres,
            exclude_genres=filters.exclude_genres,
            year_min=filters.year_min,
            year_max=filters.year_max,
            include_ids=filters.include_ids,
        )
        have = excluded | {i.pk for i, *_ in ordered}
        for pos, other in enumerate(_popularity(version, same_genre, have, n - len(ordered))):
            ordered.append((other, 0.5 / (pos + 2), "popular", None))
    liked = History(liked=history.liked if history else [], seen=set(), dismissed=set(), weights={})
    recs = _build(ordered, liked)
    for rec in recs:
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


def _similar_by_vector(version: ModelVersion, item: Item, limit: int) -> list[tuple[int, float]]:
    dim = int(version.dimensions or 0)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT b.item_id, 1 - (b.vector::vector({dim}) <=> a.vector::vector({dim}))"
            f" FROM recommender_versionitem a JOIN recommender_versionitem b"
            f" ON b.version_id = a.version_id AND b.item_id <> a.item_id"
            f" WHERE a.version_id = %s AND a.item_id = %s AND a.vector IS NOT NULL"
            f" ORDER BY b.vector::vector({dim}) <=> a.vector::vector({dim}) LIMIT %s",
            [version.pk, item.pk, limit],
        )
        return [(r[0], float(r[1])) for r in cursor.fetchall()]


def popular_items(
    *, n: int = 20, filters: Filters | None = None, exclude: Iterable[int] = ()
) -> list[Recommendation]:
    n = max(1, min(int(n), 100))
    filters = filters or Filters()
    items = _popularity(version_active(), filters, set(exclude) | set(filters.exclude_ids), n)
    empty = History(liked=[], seen=set(), dismissed=set(), weights={})
    return _build([(it, 0.5 / (pos + 2), "popular", None) for pos, it in enumerate(items)], empty)


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


def recommendation_for_item(*, user, item: Item) -> Recommendation:
    """Why this item would be recommended to this user (the item page's explanation)."""
    version = version_active()
    history = user_history_ids(user_id=user.pk)
    contributions = None
    score = 0.0
    if version is not None and history.liked:
        if version.serving == ModelVersion.Serving.FACTORS:
            vector = _user_vector(version, user.pk, history)
            row = (
                VersionItem.objects.filter(version=version, item=item).values_list("vector").first()
            )
            if vector is not None and row and row[0] is not None:
                score = float(np.dot(vector, np.asarray(row[0], dtype=np.float32)))
            contributions = _factor_contributions(version, history, np.array([item.pk])).get(
                item.pk
            )
        else:
            scored = _score_neighbors(version, history, limit=10**6)
            hit = np.nonzero(scored.item_ids == item.pk)[0]
            if len(hit):
                score = float(scored.scores[hit[0]])
            contributions = scored.contributions.get(item.pk)
    source = "cf" if contributions else "popular"
    return _build([(item, score, source, contributions)], history)[0]
