"""Cold-start items: items collaborative filtering cannot score yet (not in the version's
trained items), found by the closeness of their text to the user's favourites, and given a
place in the user's list with those favourites as their evidence."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from django.conf import settings
from django.db import connection

from catalog.models import POSITIVE_KINDS, Item

from ..evidence import ItemFacts, Ranked
from ..models import ModelVersion
from ..types import Filters
from ..vector_sql import sql_literal
from .backends import EmbeddingBackend, get_backend
from .evaluation import coldstart_evaluate, coldstart_split
from .generation import writes_generation
from .text import ITEM_HASH_SQL
from .vectors import Space, all_item_vectors, fresh_rows_sql

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
        " AND x.kind = ANY(%s))",
        [list(POSITIVE_KINDS)],
    )


def _cold_item_ids(
    backend: EmbeddingBackend, version: ModelVersion | None
) -> tuple[int, tuple[int, ...] | None]:
    """(dims, ids) of the items with a vector of ``backend`` that CF cannot score: not among the
    version's trained items (without a version: never rated or liked).

    With a version the set only changes when items are embedded or a version is activated, so
    it is kept per process for ``COLD_IDS_TTL`` seconds (at once anew after this process's own
    embedding writes), so that a "For you" list need not anti-join the whole embedding table.
    ids is None when there are more than ``COLD_IDS_MAX`` (the query anti-joins instead).
    """
    key = (backend.name, version.pk if version is not None else None)
    generation = writes_generation()
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
            f" {fresh_rows_sql(space)} AND e.item_id = ANY(%s)),"
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
    cold_filters = replace(filters, exclude_ids=frozenset(set(filters.exclude_ids) | excluded))
    return cold_items_for_history(liked=liked, filters=cold_filters, version=version, n=slots)


def mix_cold_items(
    ranked: list[Ranked],
    *,
    cold: Sequence[ColdItem],
    items: Mapping[int, Item | ItemFacts],
) -> list[Ranked]:
    """Give the cold items (``items``: their rows, or the facts read of them) a place in the
    list at ranks 3, 6, 9, ..., source "semantic", with the liked items they resemble as
    ``history_item`` evidence."""
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


def coldstart_report(*, data, seed: int = 0, by: str = "id") -> list[dict]:  # noqa: ANN001
    """The cold-start protocol (``embeddings.evaluation``) on ``data`` with the stored vectors."""
    return coldstart_evaluate(coldstart_split(data, seed=seed), all_item_vectors(by=by), seed=seed)
