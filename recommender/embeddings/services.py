"""Writes: compute and store item embeddings; create the HNSW index.

``embeddings_refresh`` is the bulk refresh (Celery ``embeddings_refresh_task``, the ``embed``
command) and ``item_embedding_refresh`` the per-item one (enqueued on commit when staff add or
edit an item). Both embed only what is missing or stale (its text hash differs from the item's
current text), upsert, and are safe to run twice or concurrently.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from ..vector_sql import sql_literal, vector_literal
from .backends import EmbeddingBackend, get_backend
from .generation import writes_bump
from .text import ITEM_HASH_SQL, ITEM_TEXT_SQL

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
BATCH = 256  # items read, embedded and written per round


@dataclass
class RefreshReport:
    backend: str = ""
    dims: int = 0
    total: int = 0  # items considered
    embedded: int = 0  # (re)computed
    fresh: int = 0  # already up to date
    deleted: int = 0  # vectors of items that no longer exist (other backends are kept)
    indexed: bool = False
    seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def items_per_second(self) -> float:
        return self.embedded / self.embed_seconds if self.embed_seconds else 0.0


def index_name(backend: str, dims: int) -> str:
    digest = hashlib.md5(backend.encode()).hexdigest()[:10]  # noqa: S324 - a name, not security
    return f"item_emb_hnsw_{digest}_{int(dims)}"


def index_exists(backend: str, dims: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [index_name(backend, dims)])
        return bool(cursor.fetchone()[0])


def index_create(*, backend: str, dims: int) -> None:
    """HNSW (inner product on normalised vectors = cosine) over one backend's vectors: an
    expression partial index, since the column has no fixed size."""
    with connection.cursor() as cursor:
        if connection.in_atomic_block:  # deferred FK checks would block CREATE INDEX
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(backend, dims)}"
            f" ON recommender_itemembedding USING hnsw ((vector::vector({int(dims)})) vector_ip_ops)"
            f" WHERE backend = {sql_literal(backend)} AND dims = {int(dims)}"
        )


def _stale_rows(backend: str, item_ids: list[int] | None, after: int, limit: int) -> list[tuple]:
    """(item id, text, hash) of items whose vector is missing or stale, by id, after ``after``."""
    where = "i.id > %s"
    params: list = [backend, after]
    if item_ids is not None:
        where += " AND i.id = ANY(%s)"
        params.append(item_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT i.id, {ITEM_TEXT_SQL}, {ITEM_HASH_SQL}, e.text_hash"
            f" FROM catalog_item i LEFT JOIN recommender_itemembedding e"
            f" ON e.item_id = i.id AND e.backend = %s"
            f" WHERE {where} ORDER BY i.id LIMIT %s",
            [*params, limit],
        )
        return cursor.fetchall()


def _write(backend: EmbeddingBackend, rows: list[tuple[int, str]], vectors: np.ndarray) -> None:
    dims = vectors.shape[1]
    writes_bump()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO recommender_itemembedding (item_id, backend, dims, text_hash, vector,"
            " updated_at) SELECT %s, %s, %s, %s, %s::vector, now()"
            " WHERE EXISTS (SELECT 1 FROM catalog_item WHERE id = %s)"
            " ON CONFLICT (backend, item_id) DO UPDATE SET dims = EXCLUDED.dims,"
            " text_hash = EXCLUDED.text_hash, vector = EXCLUDED.vector, updated_at = now()",
            [
                (item_id, backend.name, dims, text_hash, vector_literal(v), item_id)
                for (item_id, text_hash), v in zip(rows, vectors, strict=True)
            ],
        )


def embeddings_refresh(
    *,
    item_ids: Iterable[int] | None = None,
    on_progress: Progress | None = None,
    backend: EmbeddingBackend | None = None,
    hnsw_min_items: int | None = None,
) -> RefreshReport:
    """Embed every item (or ``item_ids``) whose vector is missing or stale, in batches.

    Creates the backend's HNSW index once it holds ``EMBEDDINGS_HNSW_MIN_ITEMS`` vectors (exact
    search is faster below that). Returns counts and timings.
    """
    backend = backend or get_backend()
    report = RefreshReport()
    if backend is None:
        return report
    started = time.perf_counter()
    ids = sorted({int(i) for i in item_ids}) if item_ids is not None else None
    with connection.cursor() as cursor:
        if ids is None:
            cursor.execute("SELECT count(*) FROM catalog_item")
            total = int(cursor.fetchone()[0])
        else:
            total = len(ids)
    report.backend, report.total = backend.name, total
    progress = on_progress or (lambda f, m: None)
    progress(0.0, f"checking {total} item(s)")
    after, seen = 0, 0
    while True:
        rows = _stale_rows(backend.name, ids, after, BATCH)
        if not rows:
            break
        after = rows[-1][0]
        seen += len(rows)
        todo = [(r[0], r[1], r[2]) for r in rows if r[3] != r[2]]
        report.fresh += len(rows) - len(todo)
        if todo:
            t = time.perf_counter()
            vectors = backend.embed([text for _, text, _ in todo])
            report.embed_seconds += time.perf_counter() - t
            _write(backend, [(item_id, h) for item_id, _, h in todo], vectors)
            report.embedded += len(todo)
        progress(min(seen / max(total, 1), 1.0) * 0.95, f"{seen}/{total} items checked")
    report.dims = backend.dims if report.embedded or ids is None else 0
    if ids is None:
        with connection.cursor() as cursor:  # vectors of deleted items go with the FK cascade;
            cursor.execute(  # these are rows of another size under the same backend name
                "DELETE FROM recommender_itemembedding WHERE backend = %s AND dims <> %s",
                [backend.name, backend.dims],
            )
            report.deleted = cursor.rowcount
    threshold = (
        settings.EMBEDDINGS_HNSW_MIN_ITEMS if hnsw_min_items is None else int(hnsw_min_items)
    )
    dims = backend.dims if report.embedded or ids is None else None
    if dims:
        count = embeddings_count(backend=backend.name, dims=dims)
        if count >= threshold and not index_exists(backend.name, dims):
            progress(0.96, "building the HNSW index")
            index_create(backend=backend.name, dims=dims)
        report.indexed = index_exists(backend.name, dims)
    report.seconds = time.perf_counter() - started
    progress(1.0, f"{report.embedded} embedded, {report.fresh} already fresh")
    logger.info(
        "embeddings %s: %d embedded (%.1f items/s), %d fresh, indexed=%s",
        backend.name,
        report.embedded,
        report.items_per_second,
        report.fresh,
        report.indexed,
    )
    return report


def item_embedding_refresh(*, item_id: int) -> bool:
    """Re-embed one item if its text changed (or it has no vector yet). True if embedded."""
    return embeddings_refresh(item_ids=[item_id], hnsw_min_items=10**12).embedded > 0


def embeddings_count(*, backend: str, dims: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM recommender_itemembedding WHERE backend = %s AND dims = %s",
            [backend, dims],
        )
        return int(cursor.fetchone()[0])
