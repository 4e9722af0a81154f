"""Reads over item embeddings: semantic and hybrid search, cold-start items and users.

Every query joins the item and compares the stored ``text_hash`` with the md5 of the item's
current text (``text.ITEM_HASH_SQL``), so a vector whose item was edited since it was embedded
is never served; hidden items never appear. Search uses the backend's HNSW index when the bulk
refresh built one (the catalog is large enough), exact search otherwise; a filtered index scan
that returns too few rows is redone exactly (pgvector 0.6 filters after the index).

Hybrid ranking: reciprocal-rank fusion (k = 60) of the full-text ranking
(``catalog.selectors.catalog_search``) and the semantic one, so exact title/tag words and
meaning both count and neither scale has to be calibrated against the other.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from catalog.models import Item

from ..models import ModelVersion
from ..reasons import reason_for
from ..types import Evidence, Filters, Recommendation
from . import services as embedding_services
from .backends import EmbeddingBackend, EmbeddingError, get_backend
from .services import index_exists, sql_literal, vector_literal
from .text import ITEM_HASH_SQL

if TYPE_CHECKING:
    from ..selectors import ItemFacts

RRF_K = 60
FTS_WEIGHT = 1.0
SEMANTIC_WEIGHT = 1.0
QUERY_CACHE_SIZE = 256


@dataclass(frozen=True)
class Space:
    """The configured backend and the size of its stored vectors."""

    backend: EmbeddingBackend
    dims: int
    indexed: bool


def embedding_space() -> Space | None:
    """The configured backend if it has vectors stored (else None: callers fall back)."""
    backend = get_backend()
    if backend is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT dims FROM recommender_itemembedding WHERE backend = %s LIMIT 1", [backend.name]
        )
        row = cursor.fetchone()
    if row is None:
        return None
    dims = int(row[0])
    return Space(backend, dims, index_exists(backend.name, dims))


_query_cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_query_lock = threading.Lock()


def query_vector(*, text: str, space: Space) -> np.ndarray | None:
    """The query's vector (cached per process); None if the backend fails."""
    key = (space.backend.name, text.strip().lower())
    with _query_lock:
        if key in _query_cache:
            _query_cache.move_to_end(key)
            return _query_cache[key]
    try:
        vector = space.backend.embed_query(text.strip())
    except EmbeddingError:
        return None
    with _query_lock:
        _query_cache[key] = vector
        while len(_query_cache) > QUERY_CACHE_SIZE:
            _query_cache.popitem(last=False)
    return vector


def _vector(value) -> np.ndarray:  # noqa: ANN001 - raw cursors return pgvector's text form
    if isinstance(value, str):
        return np.array(value.strip("[]").split(","), dtype=np.float32)
    return np.asarray(value, dtype=np.float32)


# "IS NOT DISTINCT FROM" (text_hash is never NULL): not a hashable join clause, so PostgreSQL
# joins on the item id first and computes the md5 only for the rows that survive, instead of for
# every item of the catalog.
def _fresh_from(space: Space) -> str:
    return (
        "FROM recommender_itemembedding e JOIN catalog_item i ON i.id = e.item_id"
        f" WHERE e.backend = {sql_literal(space.backend.name)} AND e.dims = {space.dims}"
        f" AND NOT i.is_hidden AND e.text_hash IS NOT DISTINCT FROM {ITEM_HASH_SQL}"
    )


def nearest_items(
    *, vector: np.ndarray, space: Space, n: int, filters: Filters | None = None
) -> list[tuple[int, float]]:
    """(item id, cosine similarity) of the ``n`` fresh, visible items nearest ``vector``.

    Two stages: the nearest ``k`` vectors of the backend (one table: the HNSW index when there
    is one, else one sequential pass), then the freshness check, hidden flag and filters on those
    ``k`` only. When fewer than ``n`` survive, the exact query over every row answers instead.
    """
    filters = filters or Filters()
    where, params = filters.sql("i")
    d = space.dims
    literal = vector_literal(vector)
    k = min(2000, 2 * n + 20 if filters.is_empty() else 10 * n + 200)
    staged = (
        f"SELECT c.item_id, -c.dist FROM (SELECT e.item_id, e.text_hash,"
        f" e.vector::vector({d}) <#> %s::vector({d}) AS dist FROM recommender_itemembedding e"
        f" WHERE e.backend = {sql_literal(space.backend.name)} AND e.dims = {d}"
        f" ORDER BY e.vector::vector({d}) <#> %s::vector({d}) LIMIT {k}) c"
        f" JOIN catalog_item i ON i.id = c.item_id"
        f" WHERE NOT i.is_hidden AND c.text_hash IS NOT DISTINCT FROM {ITEM_HASH_SQL}{where}"
        f" ORDER BY c.dist LIMIT %s"
    )
    exact = (
        f"SELECT e.item_id, -(e.vector::vector({d}) <#> %s::vector({d})) {_fresh_from(space)}"
        f"{where} ORDER BY e.vector::vector({d}) <#> %s::vector({d}) LIMIT %s"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        if space.indexed:
            cursor.execute(f"SET LOCAL hnsw.ef_search = {max(40, min(1000, k))}")
        cursor.execute(staged, [literal, literal, *params, n])
        rows = cursor.fetchall()
        if len(rows) < n:  # filtered or stale rows ate the first stage: every row, exactly
            cursor.execute(exact, [literal, *params, literal, n])
            rows = cursor.fetchall()
    return [(int(r[0]), float(r[1])) for r in rows]


def item_vectors(*, item_ids: Sequence[int], space: Space) -> dict[int, np.ndarray]:
    """Fresh vectors of these items (stale or missing ones are left out)."""
    if not item_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.item_id, e.vector::real[] {_fresh_from(space)} AND e.item_id = ANY(%s)",
            [list(item_ids)],
        )
        return {int(i): _vector(v) for i, v in cursor.fetchall()}


# --- search ------------------------------------------------------------------------------------


def semantic_ranking(
    *, query: str, n: int = 20, filters: Filters | None = None
) -> list[tuple[int, float]]:
    """(item id, similarity) by meaning alone; empty when there are no embeddings."""
    query = (query or "").strip()
    space = embedding_space() if query else None
    if space is None:
        return []
    vector = query_vector(text=query, space=space)
    if vector is None:
        return []
    return nearest_items(vector=vector, space=space, n=n, filters=filters)


def fts_ranking(*, query: str, n: int, filters: Filters | None = None) -> list[int]:
    """Item ids by the catalog's full-text ranking (websearch syntax + title match)."""
    from catalog.selectors import catalog_search

    from ..selectors import _filtered

    if not (query or "").strip():
        return []
    qs = catalog_search(query=query, sort="relevance")
    return list(_filtered(qs, filters or Filters()).values_list("id", flat=True)[:n])


@dataclass
class Hit:
    item_id: int
    score: float  # fused, best = 1.0
    fts_rank: int | None  # 1-based position in the full-text ranking
    similarity: float | None  # cosine similarity to the query


def hybrid_ranking(
    *,
    query: str,
    filters: Filters | None = None,
    fts_limit: int = 200,
    semantic_limit: int = 100,
) -> list[Hit]:
    """Full text and meaning fused by reciprocal rank (each list weighted, k = 60)."""
    filters = filters or Filters()
    fts = fts_ranking(query=query, n=fts_limit, filters=filters)
    sem = semantic_ranking(query=query, n=semantic_limit, filters=filters)
    hits: dict[int, Hit] = {}
    for pos, item_id in enumerate(fts, start=1):
        hits[item_id] = Hit(item_id, FTS_WEIGHT / (RRF_K + pos), pos, None)
    for pos, (item_id, sim) in enumerate(sem, start=1):
        hit = hits.setdefault(item_id, Hit(item_id, 0.0, None, None))
        hit.score += SEMANTIC_WEIGHT / (RRF_K + pos)
        hit.similarity = sim
    ordered = sorted(hits.values(), key=lambda h: (-h.score, h.item_id))
    top = ordered[0].score if ordered else 1.0
    for hit in ordered:
        hit.score /= top
    return ordered


def _as_recommendations(hits: Sequence[Hit], query: str, n: int) -> list[Recommendation]:
    hits = list(hits)[:n]
    items = Item.objects.in_bulk([h.item_id for h in hits])
    label = " ".join(query.split())[:80]
    out: list[Recommendation] = []
    for hit in hits:
        item = items.get(hit.item_id)
        if item is None:
            continue
        evidence = [Evidence("query_match", label, round(hit.score, 4))]
        if hit.similarity is not None and hit.fts_rank is None:
            evidence = [Evidence("query_match", label, round(max(hit.similarity, 0.0), 4))]
        rec = Recommendation(
            item=item,
            rank=len(out) + 1,
            score=hit.score,
            source="semantic" if hit.similarity is not None else "chat",
            evidence=evidence,
        )
        rec.reason = reason_for(rec)
        out.append(rec)
    return out


def semantic_search(
    *, query: str, n: int = 20, filters: Filters | None = None
) -> list[Recommendation]:
    """Items by meaning alone ("a feel-good film about space"), with query_match evidence."""
    pairs = semantic_ranking(query=query, n=n, filters=filters)
    return _as_recommendations([Hit(i, s, None, s) for i, s in pairs], query, n)


def hybrid_search(
    *, query: str, n: int = 20, filters: Filters | None = None
) -> list[Recommendation]:
    """Full text + meaning (see :func:`hybrid_ranking`); full text alone without embeddings."""
    n = max(1, min(int(n), 100))
    hits = hybrid_ranking(
        query=query, filters=filters, fts_limit=max(50, 3 * n), semantic_limit=max(50, 3 * n)
    )
    return _as_recommendations(hits, query, n)


def recommendations_for_text(
    *, text: str, user=None, n: int = 20, filters: Filters | None = None
) -> list[Recommendation]:
    """Cold-start users: what someone who only typed a wish gets. Hybrid search on the text,
    without the user's seen or dismissed items when there is a user."""
    filters = filters or Filters()
    if user is not None and getattr(user, "is_authenticated", False):
        from ..selectors import user_history_ids

        history = user_history_ids(user_id=user.pk)
        filters = Filters(
            genres=filters.genres,
            exclude_genres=filters.exclude_genres,
            year_min=filters.year_min,
            year_max=filters.year_max,
            exclude_ids=frozenset(filters.exclude_ids | history.excluded),
            include_ids=filters.include_ids,
        )
    return hybrid_search(query=text, n=n, filters=filters)


# --- cold-start items ---------------------------------------------------------------------------

COLD_POOL = 50  # cold items ranked by the centroid, then scored against each liked item
HISTORY_USED = 50  # most recent liked items that describe the user


@dataclass
class ColdItem:
    item_id: int
    score: float  # mean of the best (up to 2) similarities to the user's liked items
    neighbours: list[tuple[int, float]]  # (liked item, similarity), best first


COLD_IDS_TTL = 30.0  # seconds another process's new embeddings or a new version may wait
COLD_IDS_MAX = 5000  # above this the ids are not passed around: the query anti-joins
_cold_cache: dict[tuple[str, int | None], tuple[float, int, int, tuple[int, ...] | None]] = {}
_cold_lock = threading.Lock()


def _cold_clause(version: ModelVersion | None) -> tuple[str, list]:
    if version is not None:
        return (
            "NOT EXISTS (SELECT 1 FROM recommender_versionitem v WHERE v.version_id = %s"
            " AND v.item_id = e.item_id AND v.popularity > 0)",
            [version.pk],
        )
    return (
        "NOT EXISTS (SELECT 1 FROM catalog_interaction x WHERE x.item_id = e.item_id"
        " AND x.kind IN ('rating', 'like'))",
        [],
    )


def _cold_item_ids(
    backend: EmbeddingBackend, version: ModelVersion | None
) -> tuple[int, tuple[int, ...] | None]:
    """(dims, ids) of the items with a vector of ``backend`` that CF cannot score: not among the
    version's trained items (without a version: never rated or liked).

    With a version the set only changes when items are embedded or a version is activated, so
    it is kept per process for ``COLD_IDS_TTL`` seconds (at once anew after this process's own
    embedding writes): a "For you" list no longer anti-joins the whole embedding table.
    ids is None when there are more than ``COLD_IDS_MAX`` (the query anti-joins instead).
    """
    key = (backend.name, version.pk if version is not None else None)
    generation = embedding_services.WRITES["generation"]
    now = time.monotonic()
    if version is not None:
        hit = _cold_cache.get(key)
        if hit is not None and hit[1] == generation and now - hit[0] < COLD_IDS_TTL:
            return hit[2], hit[3]
    cold, params = _cold_clause(version)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT dims FROM recommender_itemembedding WHERE backend = %s LIMIT 1),"
            f" ARRAY(SELECT e.item_id FROM recommender_itemembedding e WHERE e.backend = %s"
            f" AND {cold} ORDER BY e.item_id LIMIT {COLD_IDS_MAX + 1})",
            [backend.name, backend.name, *params],
        )
        dims, ids = cursor.fetchone()
    ids = tuple(ids or ()) if dims else ()
    value = (int(dims or 0), ids if len(ids) <= COLD_IDS_MAX else None)
    if version is not None:
        with _cold_lock:
            if len(_cold_cache) > 16:
                _cold_cache.clear()
            _cold_cache[key] = (now, generation, *value)
    return value


def cold_items_for_history(
    *,
    liked: Sequence[int],
    filters: Filters | None = None,
    version: ModelVersion | None = None,
    n: int = 3,
    min_similarity: float | None = None,
) -> list[ColdItem]:
    """Items CF cannot score yet (not in the active version's trained items; without a version:
    no rating or like), whose text is close to the user's liked items.

    Candidates are the cold items nearest the centroid of the liked items' vectors; each is
    then scored by its similarity to the closest liked items, which become its evidence.
    """
    threshold = (
        settings.EMBEDDINGS_COLD_MIN_SIMILARITY if min_similarity is None else min_similarity
    )
    if not liked or n <= 0:
        return []
    backend = get_backend()
    if backend is None:
        return []
    dims, cold_ids = _cold_item_ids(backend, version)
    if not dims or cold_ids == ():  # the usual case once a model is trained: nothing to look up
        return []
    space = Space(backend, dims, False)
    where, params = (filters or Filters()).sql("i")
    if cold_ids is not None:
        cold, cold_params = "e.item_id = ANY(%s)", [list(cold_ids)]
    else:
        cold, cold_params = _cold_clause(version)
    d = dims
    # more cold items than the pool: the pool is the ones nearest the liked items' centroid
    few = cold_ids is not None and len(cold_ids) <= COLD_POOL
    order = (
        "c.item_id" if few else f"c.vector::vector({d}) <#> (SELECT avg(v) FROM hist), c.item_id"
    )
    with connection.cursor() as cursor:
        # One round trip, and no vector leaves the database: the fresh vectors of the liked
        # items; the cold rows (MATERIALIZED: never the HNSW index, which would filter after its
        # top-k) that are fresh, visible and pass the filters, ranked exactly by the centroid
        # of the liked items when there are more than the pool; for each of those, its two
        # closest liked items.
        cursor.execute(
            f"WITH hist AS MATERIALIZED (SELECT e.item_id, e.vector::vector({d}) AS v"
            f" {_fresh_from(space)} AND e.item_id = ANY(%s)),"
            f" cold AS MATERIALIZED (SELECT e.item_id, e.vector, e.text_hash"
            f" FROM recommender_itemembedding e WHERE e.backend = {sql_literal(backend.name)}"
            f" AND e.dims = {d} AND {cold}),"
            f" ranked AS MATERIALIZED (SELECT c.item_id, c.vector::vector({d}) AS v FROM cold c"
            f" JOIN catalog_item i ON i.id = c.item_id WHERE NOT i.is_hidden"
            f" AND c.text_hash IS NOT DISTINCT FROM {ITEM_HASH_SQL}{where}"
            f" ORDER BY {order} LIMIT %s)"
            f" SELECT r.item_id, s.item_id, s.sim FROM ranked r CROSS JOIN LATERAL"
            f" (SELECT h.item_id, -(r.v <#> h.v) AS sim FROM hist h"
            f" ORDER BY r.v <#> h.v, h.item_id LIMIT 2) s",
            [list(liked)[:HISTORY_USED], *cold_params, *params, COLD_POOL],
        )
        rows = cursor.fetchall()
    best: dict[int, list[tuple[int, float]]] = {}
    for cold_id, liked_id, sim in rows:
        best.setdefault(int(cold_id), []).append((int(liked_id), float(sim)))
    out: list[ColdItem] = []
    for item_id, pairs in best.items():
        pairs.sort(key=lambda p: -p[1])
        score = float(np.mean([sim for _, sim in pairs]))
        if pairs[0][1] >= threshold:
            out.append(ColdItem(item_id, score, [(h, sim) for h, sim in pairs if sim > 0]))
    out.sort(key=lambda c: (-c.score, c.item_id))
    return out[:n]


def cold_items_for_list(
    *,
    liked: Sequence[int],
    excluded: set[int],
    filters: Filters,
    version: ModelVersion | None,
    n: int,
) -> list[ColdItem]:
    """The cold items ``recommendations_for_user`` mixes into a list of ``n``: up to
    ``EMBEDDINGS_COLD_ITEMS`` (and a third of the list), none of ``excluded``."""
    slots = min(int(settings.EMBEDDINGS_COLD_ITEMS), max(1, n // 3))
    if slots <= 0 or not liked:
        return []
    cold_filters = Filters(
        genres=filters.genres,
        exclude_genres=filters.exclude_genres,
        year_min=filters.year_min,
        year_max=filters.year_max,
        exclude_ids=frozenset(set(filters.exclude_ids) | excluded),
        include_ids=filters.include_ids,
    )
    return cold_items_for_history(liked=liked, filters=cold_filters, version=version, n=slots)


def mix_cold_items(
    ranked: list[tuple[Item, float, str, list[tuple[int, float]] | None]],
    *,
    cold: Sequence[ColdItem],
    items: Mapping[int, Item | ItemFacts],
) -> list[tuple[Item, float, str, list[tuple[int, float]] | None]]:
    """Give the cold items (``items``: their rows, or the facts read of them) a place in the list at ranks 3, 6, 9, ...,
    source "semantic", with the liked items they resemble as ``history_item`` evidence."""
    present = {entry[0].pk for entry in ranked}
    scores = sorted((entry[1] for entry in ranked), reverse=True)
    out = list(ranked)
    for j, c in enumerate(cold):
        item = items.get(c.item_id)
        if item is None or item.pk in present:
            continue
        pos = 2 + 3 * j
        anchor = scores[min(pos, len(scores) - 1)] if scores else c.score
        out.append((item, anchor + 1e-6, "semantic", c.neighbours))
    return out


def all_item_vectors(*, by: str = "id") -> dict[int, np.ndarray]:
    """Every fresh vector of the configured backend, keyed by item id or by integer external id
    (MovieLens movieId; other external ids are skipped). For offline evaluation."""
    space = embedding_space()
    if space is None:
        return {}
    key = "i.external_id" if by == "external_id" else "i.id"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {key}, e.vector {_fresh_from(space)}")
        out: dict[int, np.ndarray] = {}
        for k, v in cursor.fetchall():
            try:
                out[int(k)] = _vector(v)
            except ValueError:
                continue
        return out


def coldstart_report(*, data, seed: int = 0, by: str = "id") -> list[dict]:  # noqa: ANN001
    """The cold-start protocol (``embeddings.evaluation``) on ``data`` with the stored vectors."""
    from .evaluation import coldstart_evaluate, coldstart_split

    return coldstart_evaluate(coldstart_split(data, seed=seed), all_item_vectors(by=by), seed=seed)


def hybrid_catalog_ids(
    *,
    query: str,
    genre: str = "",
    year_min: int | None = None,
    year_max: int | None = None,
    limit: int = 500,
) -> list[tuple[int, float]] | None:
    """The catalog page's and the API's "relevance" order for a query: (item id, fused score),
    full text and meaning fused. None when there are no embeddings (callers keep full text)."""
    if not (query or "").strip() or embedding_space() is None:
        return None
    filters = Filters(genres=(genre,) if genre else (), year_min=year_min, year_max=year_max)
    hits = hybrid_ranking(
        query=query, filters=filters, fts_limit=limit, semantic_limit=min(100, limit)
    )
    return [(h.item_id, h.score) for h in hits[:limit]]
