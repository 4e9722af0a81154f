"""Stored item vectors: the configured backend's space, the query vector, nearest items.

Every read joins the item and compares the stored ``text_hash`` with the md5 of the item's
current text (``text.ITEM_HASH_SQL``), so a vector whose item was edited since it was embedded
is never served; hidden items never appear. Search uses the backend's HNSW index when the bulk
refresh built one (the catalog is large enough), exact search otherwise; a filtered index scan
that returns too few rows is redone exactly (pgvector 0.6 filters after the index).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction

from ..types import Filters
from ..vector_sql import sql_literal, vector_from_text, vector_literal
from .backends import EmbeddingBackend, EmbeddingError, get_backend
from .services import index_exists
from .text import ITEM_HASH_SQL

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


def query_cache_clear() -> None:
    """Forget the cached query vectors (benchmarks measure the backend with it)."""
    with _query_lock:
        _query_cache.clear()


# "IS NOT DISTINCT FROM" (text_hash is never NULL): not a hashable join clause, so PostgreSQL
# joins on the item id first and computes the md5 only for the rows that survive, instead of for
# every item of the catalog.
def fresh_rows_sql(space: Space) -> str:
    """FROM and WHERE over the fresh, visible vectors of ``space`` (alias e, the item i)."""
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
        f"SELECT e.item_id, -(e.vector::vector({d}) <#> %s::vector({d})) {fresh_rows_sql(space)}"
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
            f"SELECT e.item_id, e.vector::real[] {fresh_rows_sql(space)} AND e.item_id = ANY(%s)",
            [list(item_ids)],
        )
        return {int(i): vector_from_text(v) for i, v in cursor.fetchall()}


def all_item_vectors(*, by: str = "id") -> dict[int, np.ndarray]:
    """Every fresh vector of the configured backend, keyed by item id or by integer external id
    (MovieLens movieId; other external ids are skipped). For offline evaluation."""
    space = embedding_space()
    if space is None:
        return {}
    key = "i.external_id" if by == "external_id" else "i.id"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {key}, e.vector {fresh_rows_sql(space)}")
        out: dict[int, np.ndarray] = {}
        for k, v in cursor.fetchall():
            try:
                out[int(k)] = vector_from_text(v)
            except ValueError:
                continue
        return out
