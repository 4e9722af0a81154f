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

import functools
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import numpy as np
import scipy.sparse as sp
from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet

from catalog.models import Interaction, Item
from recsite.metrics import RECOMMENDATION_DURATION

from .engine import blas_threads
from .models import ModelVersion, UserVector, VersionItem
from .reasons import reason_for
from .types import Evidence, Filters, Recommendation

P = ParamSpec("P")
R = TypeVar("R")
POSITIVE_KINDS = (Interaction.Kind.RATING, Interaction.Kind.LIKE)
# A rating below this is a signal the user did not enjoy the item: it is still "seen" (never
# recommended again) but it does not pull similar items up.
LIKED_RATING = 3.0
BOOST_SCALE = 0.1  # final = score / top score + BOOST_SCALE * boost
FEATURED_BONUS = 0.05
MAX_EVIDENCE_ITEMS = 3
PROFILE_ITEMS = 200  # the most recent favourites that make up the genre/tag profile
DENSE_ROWS_BLOCK = 256  # history rows of a dense weight matrix summed at a time


def unpack_neighbors(packed_ids: bytes, packed_weights: bytes) -> tuple[np.ndarray, np.ndarray]:
    """VersionItem.neighbors / .weights: little-endian int64 item ids and float32 weights."""
    return (
        np.frombuffer(bytes(packed_ids), dtype="<i8"),
        np.frombuffer(bytes(packed_weights), dtype="<f4"),
    )


# --- the active version ---------------------------------------------------------------------------


def version_active() -> ModelVersion | None:
    """The serving version (its pickled artifact, which only the fold-in reads, left deferred)."""
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).defer("artifact").first()


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


def _with_recency(history: History, version: ModelVersion | None) -> History:
    """Models that score recent history higher (``recency`` in their parameters) weigh the
    user's i-th most recent favourite by ``1 + recency * exp(-i / recency_tau)``, as at fit."""
    params = (version.params if version is not None else None) or {}
    recency = float(params.get("recency") or 0.0)
    if not recency or not history.liked:
        return history
    tau = float(params.get("recency_tau") or 10.0)
    weights = 1.0 + recency * np.exp(-np.arange(len(history.liked)) / tau)
    return History(
        liked=history.liked,
        seen=history.seen,
        dismissed=history.dismissed,
        weights=dict(zip(history.liked, weights.tolist(), strict=True)),
    )


def user_history_ids(*, user_id: int) -> History:
    # SQL: read on every list and item page, up to thousands of rows (the ORM doubled its cost)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT item_id, kind, value FROM {Interaction._meta.db_table} WHERE user_id = %s"
            " ORDER BY timestamp DESC, id DESC",
            [user_id],
        )
        rows = cursor.fetchall()
    liked: list[int] = []
    seen: set[int] = set()
    dismissed: set[int] = set()
    weights: dict[int, float] = {}
    for item_id, kind, value in rows:
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


def items_filtered(*, filters: Filters) -> QuerySet[Item]:
    """Visible items passing the hard filters (the chat's SQL filter tool calls this)."""
    return _filtered(Item.objects.all(), filters)


def _filtered(qs: QuerySet[Item], filters: Filters) -> QuerySet[Item]:
    return qs.filter(_filters_q(filters))


def _filters_q(filters: Filters) -> Q:
    """Visible and inside the hard filters, as one condition (a WHERE, or a boolean column)."""
    q = Q(is_hidden=False)
    if filters.genres:
        q &= Q(genres__overlap=list(filters.genres))
    if filters.exclude_genres:
        q &= ~Q(genres__overlap=list(filters.exclude_genres))
    if filters.year_min is not None:
        q &= Q(year__gte=filters.year_min)
    if filters.year_max is not None:
        q &= Q(year__lte=filters.year_max)
    if filters.exclude_ids:
        q &= ~Q(pk__any=filters.exclude_ids)
    if filters.include_ids is not None:
        q &= Q(pk__any=filters.include_ids)
    return q


CURATED_EXTRA = 550  # curated items read beyond the list's length (pinned first)


@dataclass(slots=True)
class ItemFacts:
    """What ranking and evidence read of an item: one light row (no text, no JSON). The full
    rows are read only for the items a list returns."""

    pk: int
    title: str
    year: int | None
    genres: list[str]
    tags: list[str]
    is_pinned: bool
    is_featured: bool
    boost: float
    passes: bool  # visible and inside the request's hard filters

    def __str__(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title


_FACT_COLUMNS = ", ".join(
    f"i.{c}" for c in ("id", "title", "year", "genres", "tags", "is_pinned", "is_featured", "boost")
)


def _item_facts(
    *, ids: Iterable[int], filters: Filters, curated: int = 0
) -> tuple[dict[int, ItemFacts], list[ItemFacts]]:
    """In one query: the facts of ``ids`` (each says whether it passes ``filters``) and, with
    ``curated`` > 0, up to that many curated items passing them (pinned first, then by id).

    SQL rather than the ORM: it is read on every list, for a few hundred rows, and the ORM's
    per-value work cost more than the query (``Filters.sql`` is the filters' SQL form)."""
    ids = list(dict.fromkeys(ids))
    if not ids and curated <= 0:
        return {}, []
    where, params = filters.sql("i")
    table = Item._meta.db_table
    sql = f"SELECT {_FACT_COLUMNS}, (NOT i.is_hidden{where}) FROM {table} i WHERE i.id = ANY(%s)"
    args: list = [*params, ids]
    if curated > 0:
        sql = (
            f"({sql}) UNION ALL (SELECT {_FACT_COLUMNS}, TRUE FROM {table} i"
            f" WHERE (i.is_pinned OR i.is_featured OR i.boost <> 0) AND NOT i.is_hidden{where}"
            " ORDER BY i.is_pinned DESC, i.id LIMIT %s)"
        )
        args += [*params, curated]
    facts: dict[int, ItemFacts] = {}
    curated_rows: dict[int, ItemFacts] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        for row in cursor.fetchall():
            fact = facts.setdefault(row[0], ItemFacts(*row))
            if fact.passes and (fact.is_pinned or fact.is_featured or fact.boost):
                curated_rows[fact.pk] = fact
    ordered = sorted(curated_rows.values(), key=lambda f: (not f.is_pinned, f.pk))
    return facts, ordered


# --- scoring --------------------------------------------------------------------------------------


@dataclass
class _Scored:
    item_ids: np.ndarray  # candidate ids, best first
    scores: np.ndarray
    contributions: dict[int, list[tuple[int, float]]]  # candidate -> [(history item, weight)]
    source: str


@dataclass
class _NeighbourIndex:
    """A neighbour version's weights as one sparse matrix, kept in memory per process.

    Loaded once per version (~0.3 s for ml-latest-small, 16 MB for 9.7k items x 200
    neighbours); a user's scores are then the sum of their history rows, in C.
    """

    item_ids: np.ndarray  # sorted catalog ids; position = matrix index
    # W[h, i]: what having h in the history adds to i's score. A CSR of the top-K table, or
    # the dense matrix memory-mapped from the version's weights file (shared by processes).
    W: sp.csr_matrix | np.ndarray

    def positions(self, ids) -> np.ndarray:
        ids = np.asarray(list(ids), dtype=np.int64)
        if len(ids) == 0 or len(self.item_ids) == 0:
            return np.empty(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.item_ids, ids), len(self.item_ids) - 1)
        return pos[self.item_ids[pos] == ids]


_NEIGHBOUR_CACHE: dict[int, _NeighbourIndex] = {}
_NEIGHBOUR_CACHE_LOCK = threading.Lock()
# above this many stored weights a version is scored from its rows per request instead
NEIGHBOUR_CACHE_MAX_ENTRIES = 50_000_000


def _neighbour_index(version: ModelVersion) -> _NeighbourIndex | None:
    cached = _NEIGHBOUR_CACHE.get(version.pk)
    if cached is not None:
        return cached
    from .services import dense_weights_load

    dense = dense_weights_load(version_id=version.pk)
    if dense is not None:
        with _NEIGHBOUR_CACHE_LOCK:
            if len(_NEIGHBOUR_CACHE) >= 2:
                _NEIGHBOUR_CACHE.clear()
            _NEIGHBOUR_CACHE[version.pk] = _NeighbourIndex(item_ids=dense[0], W=dense[1])
            return _NEIGHBOUR_CACHE[version.pk]
    n_items = version.n_items or 0
    k = int(getattr(settings, "RECOMMENDER_NEIGHBOURS", 200))
    if n_items * k > NEIGHBOUR_CACHE_MAX_ENTRIES:
        return None
    with _NEIGHBOUR_CACHE_LOCK:
        if version.pk in _NEIGHBOUR_CACHE:
            return _NEIGHBOUR_CACHE[version.pk]
        rows = list(
            VersionItem.objects.filter(version=version)
            .order_by("item_id")
            .values_list("item_id", "neighbors", "weights")
        )
        item_ids = np.array([r[0] for r in rows], dtype=np.int64)
        indptr = [0]
        targets: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        for _item_id, packed_ids, packed_w in rows:
            if packed_ids:
                ids, w = unpack_neighbors(packed_ids, packed_w)
            else:
                ids, w = np.empty(0, np.int64), np.empty(0, np.float32)
            targets.append(ids)
            weights.append(w)
            indptr.append(indptr[-1] + len(ids))
        all_targets = np.concatenate(targets) if targets else np.empty(0, np.int64)
        cols = np.minimum(np.searchsorted(item_ids, all_targets), max(len(item_ids) - 1, 0))
        W = sp.csr_matrix(
            (np.concatenate(weights) if weights else np.empty(0, np.float32), cols, indptr),
            shape=(len(item_ids), len(item_ids)),
            dtype=np.float32,
        )
        index = _NeighbourIndex(item_ids=item_ids, W=W)
        if len(_NEIGHBOUR_CACHE) >= 2:
            _NEIGHBOUR_CACHE.clear()
        _NEIGHBOUR_CACHE[version.pk] = index
        return index


def _score_neighbors(
    version: ModelVersion, history: History, limit: int, excluded: set[int] | None = None
) -> _Scored:
    index = _neighbour_index(version)
    if index is None:
        return _score_neighbors_from_rows(version, history, limit)
    h = index.positions(history.liked)
    if len(h) == 0:
        return _Scored(np.empty(0, np.int64), np.empty(0), {}, "cf")
    w = np.array([history.weights.get(i, 1.0) for i in index.item_ids[h].tolist()], np.float32)
    dense = isinstance(index.W, np.ndarray)
    if dense:
        # dense weights: the weighted sum of the history's rows of the memory map, a block of
        # rows at a time (a long history never copies history x catalog floats at once)
        scores = np.zeros(index.W.shape[1], dtype=np.float64)
        order = np.argsort(h, kind="stable")  # ascending rows: sequential reads of the map
        for lo in range(0, len(h), DENSE_ROWS_BLOCK):
            block = order[lo : lo + DENSE_ROWS_BLOCK]
            scores += w[block] @ index.W[h[block]]
    else:
        rows = sp.diags(w) @ index.W[h] if np.any(w != 1.0) else index.W[h]
        rows = sp.csr_matrix(rows)
        scores = np.asarray(rows.sum(axis=0), dtype=np.float64).ravel()
    scores[index.positions(excluded or ())] = -np.inf
    scores[h] = -np.inf
    limit = min(max(limit, 1), len(scores))
    top = np.argpartition(-scores, limit - 1)[:limit]
    top = top[np.argsort(-scores[top], kind="stable")]
    top = top[np.isfinite(scores[top]) & (scores[top] > 0)]
    # each history item's part in each kept candidate's score: a small history x candidates block
    if dense:
        part = np.asarray(index.W[np.ix_(h, top)], dtype=np.float32) * w[:, None]
    else:
        part = rows[:, top].toarray().astype(np.float32, copy=False)
    contributions = _strongest_contributions(part, index.item_ids[h], index.item_ids[top])
    return _Scored(index.item_ids[top], scores[top], contributions, "cf")


def _strongest_contributions(
    part: np.ndarray, history_ids: np.ndarray, candidate_ids: np.ndarray, rest: bool = True
) -> dict[int, list[tuple[int, float]]]:
    """candidate -> its (up to MAX_EVIDENCE_ITEMS) strongest positive history contributions,
    plus ``(-1, rest)``: what every other history item added, so that each named item's share
    is taken against the whole positive score. ``part[r, c]``: history item r's part in c.
    ``rest=False``: the named items only (similarities, which do not add up to a score)."""
    if part.size == 0:
        return {}
    positive = np.maximum(part, 0.0)
    total = positive.sum(axis=0)
    k = min(MAX_EVIDENCE_ITEMS, part.shape[0])
    if part.shape[0] > k:
        best = np.argpartition(-part, k - 1, axis=0)[:k]
    else:
        best = np.broadcast_to(np.arange(part.shape[0])[:, None], part.shape)
    values = np.take_along_axis(part, best, axis=0)
    others = np.maximum(total - np.maximum(values, 0.0).sum(axis=0), 0.0)
    named = history_ids[best]
    out: dict[int, list[tuple[int, float]]] = {}
    for j, item_id in enumerate(candidate_ids.tolist()):
        if total[j] <= 0:
            continue
        pairs = [
            (h, v)
            for h, v in zip(named[:, j].tolist(), values[:, j].tolist(), strict=True)
            if v > 0
        ]
        pairs.sort(key=lambda p: -p[1])
        if rest:
            pairs.append((-1, float(others[j])))
        out[item_id] = pairs
    return out


def _score_neighbors_from_rows(version: ModelVersion, history: History, limit: int) -> _Scored:
    """The same scores from the version's rows in SQL (catalogs too large to keep in memory)."""
    rows = VersionItem.objects.filter(version=version, item_id__in=history.liked).values_list(
        "item_id", "neighbors", "weights"
    )
    sources, targets, weights = [], [], []
    for item_id, packed_ids, packed_w in rows:
        if not packed_ids:
            continue
        neighbors, w = unpack_neighbors(packed_ids, packed_w)
        sources.append(np.full(len(neighbors), item_id, dtype=np.int64))
        targets.append(neighbors)
        weights.append(w.astype(np.float64) * history.weights.get(item_id, 1.0))
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
    keep = np.isin(tgt, top_ids)
    contributions: dict[int, list[tuple[int, float]]] = {}
    for s_, t, w in zip(src[keep].tolist(), tgt[keep].tolist(), wts[keep].tolist(), strict=True):
        contributions.setdefault(t, []).append((s_, w))
    return _Scored(top_ids, scores[top], contributions, "cf")


def _user_vector(version: ModelVersion, user_id: int, history: History) -> np.ndarray | None:
    from . import services  # fold-in lives with the writes

    row = UserVector.objects.filter(version=version, user_id=user_id).values_list("vector").first()
    if row is not None:
        return np.asarray(row[0], dtype=np.float32)
    return services.user_vector_compute(version=version, item_ids=history.liked)


def _score_factors(
    version: ModelVersion, user_id: int, history: History, limit: int, excluded: set[int]
) -> _Scored:
    """The ``limit`` best items outside ``excluded`` by inner product with the user's vector,
    searched in pgvector (HNSW when the version is indexed, else exact)."""
    vector = _user_vector(version, user_id, history)
    if vector is None:
        return _Scored(np.empty(0, np.int64), np.empty(0), {}, "cf")
    dim = int(version.dimensions or len(vector))
    literal = "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"
    # the HNSW index is on the expression vector::vector(dim); an exact scan skips the cast
    cast = f"::vector({dim})" if version.indexed else ""
    with connection.cursor() as cursor:
        if version.indexed:
            cursor.execute("SET LOCAL hnsw.ef_search = %s", [max(40, min(limit, 1000))])
        cursor.execute(
            f"SELECT item_id, -(vector{cast} <#> %s::vector{cast}) AS score"
            f" FROM recommender_versionitem WHERE version_id = %s"
            f" ORDER BY vector{cast} <#> %s::vector{cast} LIMIT %s",
            [literal, version.pk, literal, limit + len(excluded)],
        )
        rows = [r for r in cursor.fetchall() if r[0] not in excluded][:limit]
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    scores = np.array([r[1] for r in rows], dtype=np.float64)
    return _Scored(ids, scores, _factor_contributions(version, history, ids), "cf")


def item_vectors_read(*, version: ModelVersion, item_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """A factor version's vectors of these items, read in pgvector's binary form: its text
    form costs the server a float-to-text conversion per dimension (10 ms for 260 vectors of 64
    dimensions against 1.5 ms)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT item_id, vector_send(vector) FROM recommender_versionitem"
            " WHERE version_id = %s AND item_id = ANY(%s) AND vector IS NOT NULL",
            [version.pk, list(item_ids)],
        )
        rows = cursor.fetchall()
    out: dict[int, np.ndarray] = {}
    for item_id, packed in rows:
        packed = bytes(packed)  # uint16 dimensions, uint16 unused, big-endian float32s
        dims = int.from_bytes(packed[:2], "big")
        out[item_id] = np.frombuffer(packed, dtype=">f4", count=dims, offset=4).astype(np.float32)
    return out


def _factor_contributions(
    version: ModelVersion, history: History, candidates: np.ndarray
) -> dict[int, list[tuple[int, float]]]:
    """For vector models: the history items whose vectors are closest (cosine) to each
    candidate's, up to MAX_EVIDENCE_ITEMS with a positive similarity."""
    liked = history.liked[:PROFILE_ITEMS]
    if not liked or len(candidates) == 0:
        return {}
    vectors = item_vectors_read(version=version, item_ids=[*liked, *candidates.tolist()])
    h_ids = np.array([i for i in liked if i in vectors], dtype=np.int64)
    c_ids = np.array([c for c in candidates.tolist() if c in vectors], dtype=np.int64)
    if len(h_ids) == 0 or len(c_ids) == 0:
        return {}

    def unit(ids: np.ndarray) -> np.ndarray:
        m = np.stack([vectors[i] for i in ids.tolist()])
        return m / (np.linalg.norm(m, axis=1, keepdims=True) + 1e-9)

    sims = unit(h_ids) @ unit(c_ids).T  # history x candidates
    return _strongest_contributions(sims, h_ids, c_ids, rest=False)


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
        named = [c for c in contributions if c[0] != -1]
        best = sorted(named, key=lambda c: -c[1])[:MAX_EVIDENCE_ITEMS]
        for h, w in best:
            if w > 0 and h in titles and h != -1:
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


def _one_blas_thread(fn: Callable[P, R]) -> Callable[P, R]:
    """A request's numpy work runs on one BLAS thread. With more, OpenBLAS's idle worker spins
    between calls: a "For you" list cost 12 ms of CPU for 7 ms of wall clock (a core taken from
    PostgreSQL and the other requests), against 5 ms of CPU on one thread. The engine's own
    ``blas_threads`` decides for training."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with blas_threads(1):
            return fn(*args, **kwargs)

    return wrapper


@RECOMMENDATION_DURATION.time()
@_one_blas_thread
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

    Ranking and evidence read light rows (:class:`ItemFacts`) of the candidates, the curated
    items and the user's favourites in one query; full rows are read for the ``n`` returned.
    """
    n = max(1, min(int(n), 100))
    filters = filters or Filters()
    version = version or version_active()
    history = _with_recency(user_history_ids(user_id=user.pk), version)
    excluded = history.excluded | set(filters.exclude_ids)
    profile = history.liked[:PROFILE_ITEMS]

    # items CF cannot score yet, close in text to the user's favourites
    from .embeddings.selectors import cold_items_for_list, mix_cold_items

    cold = cold_items_for_list(
        liked=history.liked, excluded=excluded, filters=filters, version=version, n=n
    )
    cold_ids = [c.item_id for c in cold]
    facts: dict[int, ItemFacts] = {}
    curated: list[ItemFacts] = []

    def read_facts(ids: Iterable[int], first: bool) -> None:
        new_facts, new_curated = _item_facts(
            ids=[i for i in ids if i not in facts],
            filters=filters,
            curated=n + CURATED_EXTRA if first else 0,
        )
        facts.update(new_facts)
        curated.extend(new_curated)

    ranked: list[_Entry] = []
    if version is not None and history.liked:
        # a pool a little larger than asked; grown when hard filters reject most of it
        pool = max(60, n * 3)
        first = True
        while True:
            if version.serving == ModelVersion.Serving.FACTORS:
                scored = _score_factors(version, user.pk, history, pool, excluded)
            else:
                scored = _score_neighbors(version, history, pool, excluded)
            keep = [i for i in scored.item_ids.tolist() if i not in excluded]
            contributors = {h for c in scored.contributions.values() for h, _ in c if h != -1}
            read_facts([*keep, *cold_ids, *profile, *contributors] if first else keep, first)
            first = False
            # (an item deleted since training has no row: it is skipped)
            allowed = sum(1 for i in keep if (f := facts.get(i)) is not None and f.passes)
            if allowed >= n or len(scored.item_ids) < pool or pool >= 20_000:
                break
            pool *= 8
        top = float(scored.scores[0]) if len(scored.scores) and scored.scores[0] > 0 else 1.0
        in_list: set[int] = set()
        for item_id, score in zip(scored.item_ids.tolist(), scored.scores.tolist(), strict=True):
            fact = facts.get(item_id)
            if fact is not None and fact.passes and item_id not in excluded:
                ranked.append((fact, score / top, "cf", scored.contributions.get(item_id)))
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
        read_facts([*cold_ids, *profile], True)
    if len(ranked) < n:
        have = {entry[0].pk for entry in ranked}
        for pos, item in enumerate(_popularity(version, filters, excluded | have, n - len(ranked))):
            ranked.append((item, 0.5 / (pos + 2), "popular", None))
    curated_ids = {f.pk for f in curated}
    cold = [c for c in cold if c.item_id not in curated_ids]
    if cold:
        cold_rows = {c.item_id: facts[c.item_id] for c in cold if c.item_id in facts}
        ranked = mix_cold_items(ranked, cold=cold, items=cold_rows)

    pinned = [p for p in curated if p.is_pinned and p.pk not in excluded][:n]
    pinned_ids = {p.pk for p in pinned}

    def final(entry: _Entry) -> float:
        item, score, _src, _c = entry
        return score + BOOST_SCALE * item.boost + (FEATURED_BONUS if item.is_featured else 0.0)

    rest = sorted((e for e in ranked if e[0].pk not in pinned_ids), key=final, reverse=True)
    ordered = [(p, 1.0 + BOOST_SCALE * p.boost, "curated", None) for p in pinned] + [
        (e[0], final(e), e[2], e[3]) for e in rest
    ]
    return _build(_with_rows(ordered[:n], filters), history, facts=facts)


_Entry = tuple["Item | ItemFacts", float, str, list[tuple[int, float]] | None]


def _with_rows(ordered: Sequence[_Entry], filters: Filters) -> list[_Entry]:
    """The entries with their full Item rows (one query for those ranked on facts); an item
    hidden since its facts were read is dropped."""
    wanted = [e[0].pk for e in ordered if isinstance(e[0], ItemFacts)]
    rows = (
        {i.pk: i for i in _filtered(Item.objects.filter(pk__any=wanted), filters)} if wanted else {}
    )
    out: list[_Entry] = []
    for item, score, source, contribs in ordered:
        if isinstance(item, ItemFacts):
            row = rows.get(item.pk)
            if row is None:
                continue
            item = row
        out.append((item, score, source, contribs))
    return out


def _strongest(
    contributions: list[tuple[int, float]] | None, top: int = MAX_EVIDENCE_ITEMS
) -> list[tuple[int, float]] | None:
    """The ``top`` strongest named contributions, then ``(-1, rest)``: everything else that
    contributed, so each named share is taken against the whole positive score."""
    if not contributions:
        return contributions
    total = sum(w for _, w in contributions if w > 0)
    named = sorted((c for c in contributions if c[0] != -1 and c[1] > 0), key=lambda c: -c[1])
    best = named[:top]
    return best + [(-1, max(total - sum(w for _, w in best), 0.0))]


def _build(
    ordered: Sequence[tuple[Item, float, str, list[tuple[int, float]] | None]],
    history: History,
    facts: dict[int, ItemFacts] | None = None,
) -> list[Recommendation]:
    """Recommendations with their evidence. ``facts``: rows already read (the user's favourites
    and the contributing items); only those missing are queried."""
    # keep only each item's strongest contributors: they are what the evidence can name
    ordered = [
        (item, score, source, _strongest(contribs)) for item, score, source, contribs in ordered
    ]
    profile_ids = history.liked[:PROFILE_ITEMS]
    needed = set(profile_ids)
    for _item, _s, _src, contribs in ordered:
        needed.update(h for h, _ in contribs or [] if h != -1)
    facts = facts or {}
    rows = [(f.pk, f.title, f.year, f.genres, f.tags) for i in needed if (f := facts.get(i))]
    missing = needed.difference(facts)
    if missing:
        rows += Item.objects.filter(pk__in=missing).values_list(
            "id", "title", "year", "genres", "tags"
        )
    titles: dict[int, str] = {}
    genres: Counter = Counter()
    tags: Counter = Counter()
    profile = set(profile_ids)
    for pk, title, year, item_genres, item_tags in rows:
        titles[pk] = f"{title} ({year})" if year else title
        if pk in profile:
            genres.update(set(item_genres))
            tags.update({t.lower() for t in item_tags})
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
                ids, w = unpack_neighbors(row[0], row[1])
                pairs = sorted(zip(ids.tolist(), w.tolist(), strict=True), key=lambda p: -p[1])
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
    reference_liked = history is not None and item.pk in set(history.liked)
    # The reference item is "history" only if this user liked it; otherwise the evidence is
    # what other users did: people who liked it also liked these.
    ordered = [
        (other, score, source, contribs if reference_liked else None)
        for other, score, source, contribs in ordered
    ]
    recs = _build(ordered, liked)
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


def _explain_neighbors(
    version: ModelVersion, history: History, item_id: int
) -> tuple[float, list[tuple[int, float]] | None]:
    """One item's score for this history and each history item's part in it."""
    index = _neighbour_index(version)
    if index is None:
        scored = _score_neighbors_from_rows(version, history, limit=10**6)
        hit = np.nonzero(scored.item_ids == item_id)[0]
        score = float(scored.scores[hit[0]]) if len(hit) else 0.0
        return score, scored.contributions.get(item_id)
    h = index.positions(history.liked)
    target = index.positions([item_id])
    if len(h) == 0 or len(target) == 0:
        return 0.0, None
    column = sp.coo_matrix(index.W[h][:, target])
    pairs = []
    for r, w in zip(column.row, column.data, strict=True):
        history_id = int(index.item_ids[h[r]])
        pairs.append((history_id, float(w) * history.weights.get(history_id, 1.0)))
    return float(sum(w for _, w in pairs)), pairs or None


@_one_blas_thread
def recommendation_for_item(*, user, item: Item) -> Recommendation:
    """Why this item would be recommended to this user (the item page's explanation)."""
    version = version_active()
    history = _with_recency(user_history_ids(user_id=user.pk), version)
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
            score, contributions = _explain_neighbors(version, history, item.pk)
    source = "cf" if contributions else "popular"
    return _build([(item, score, source, contributions)], history)[0]
