"""Where a model version lives: its rows in PostgreSQL, its vectors in pgvector, its weights file.

Neighbour models (EASE family, item-kNN) store each item's top-K outgoing weights in
``VersionItem.neighbors`` / ``.weights`` and, for catalogs up to ``RECOMMENDER_DENSE_MAX_ITEMS``,
the full weight matrix in a ``.npy`` file. Factor models (ALS, BPR) store item and user vectors
in pgvector and the fitted model (pickled) for folding a user in. This module only reads and
writes these; it imports no selectors, services or tasks.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from catalog.models import Item

from . import engine
from .models import ModelVersion, UserVector, VersionItem
from .vector_sql import vector_from_binary, vector_literal

COPY_BATCH = 1000  # rows formatted per write to COPY


def unpack_neighbors(packed_ids: bytes, packed_weights: bytes) -> tuple[np.ndarray, np.ndarray]:
    """VersionItem.neighbors / .weights: little-endian int64 item ids and float32 weights."""
    return (
        np.frombuffer(bytes(packed_ids), dtype="<i8"),
        np.frombuffer(bytes(packed_weights), dtype="<f4"),
    )


def pack_neighbors(ids: np.ndarray, weights: np.ndarray) -> tuple[bytes, bytes]:
    """unpack_neighbors' inverse (the candidates beside a user vector are packed alike)."""
    return np.asarray(ids).astype("<i8").tobytes(), np.asarray(weights).astype("<f4").tobytes()


# --- a version's rows -----------------------------------------------------------------------------


def version_rows_write(
    *,
    version: ModelVersion,
    model: engine.Recommender,
    X: sp.csr_matrix,
    item_ids: np.ndarray,
    user_ids: np.ndarray,
) -> tuple[str, int | None, bytes | None]:
    """COPY the version's per-item rows (and user vectors) in one transaction; returns
    (serving, vector dimensions, pickled model).

    Item-item models: each item's top-K outgoing weights (K = RECOMMENDER_NEIGHBOURS), and the
    dense weights file. Factor models: item vectors and the trained users' vectors into
    pgvector, plus the fitted model so that any process can fold a user in from their history.
    """
    popularity = np.asarray(X.getnnz(axis=0)).ravel()
    if isinstance(model, engine.ItemItemRecommender):
        dense_weights_write(version_id=version.pk, model=model, item_ids=item_ids)
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        if isinstance(model, engine.ItemItemRecommender):
            table = model.neighbour_table(k=getattr(settings, "RECOMMENDER_NEIGHBOURS", 200))
            order = np.argsort(table.item, kind="stable")
            src, dst, wts = table.item[order], table.neighbour[order], table.weight[order]
            bounds = np.searchsorted(src, np.arange(len(item_ids) + 1))
            dst_ids = item_ids[dst]
            cols = "version_id, item_id, popularity, neighbors, weights"
            # Packed little-endian arrays, hex-encoded for COPY: all formatting in C.
            dst_hex = dst_ids.astype("<i8").tobytes().hex()
            w_hex = wts.astype("<f4").tobytes().hex()
            lines = []
            for idx, item_id in enumerate(item_ids.tolist()):
                lo, hi = int(bounds[idx]), int(bounds[idx + 1])
                lines.append(
                    f"{version.pk}\t{item_id}\t{int(popularity[idx])}"
                    f"\t\\\\x{dst_hex[lo * 16 : hi * 16]}\t\\\\x{w_hex[lo * 8 : hi * 8]}\n"
                )
            with raw.copy(f"COPY recommender_versionitem ({cols}) FROM STDIN") as copy:
                for start in range(0, len(lines), COPY_BATCH):
                    copy.write("".join(lines[start : start + COPY_BATCH]).encode())
            return ModelVersion.Serving.NEIGHBORS, None, None
        if not isinstance(model, engine.FactorRecommender):
            # popularity: rows with counts only; serving falls back to popularity
            with raw.copy(
                "COPY recommender_versionitem (version_id, item_id, popularity) FROM STDIN"
            ) as copy:
                for idx, item_id in enumerate(item_ids.tolist()):
                    copy.write_row((version.pk, item_id, int(popularity[idx])))
            return ModelVersion.Serving.NEIGHBORS, None, None
        factors = model.item_factors
        dims = int(factors.shape[1])
        with raw.copy(
            "COPY recommender_versionitem (version_id, item_id, popularity, vector) FROM STDIN"
        ) as copy:
            for idx, item_id in enumerate(item_ids.tolist()):
                copy.write_row(
                    (version.pk, item_id, int(popularity[idx]), vector_literal(factors[idx]))
                )
        users = model.user_vectors(X)
        # each user's best items outside their training rows, so that a list need not search
        # the catalog (nearest_by_vector)
        order = engine.NormOrder.of(factors)
        best, best_scores = engine.top_unseen(order, users, X, USER_CANDIDATES)
        now = timezone.now()
        with raw.copy(
            "COPY recommender_uservector"
            " (version_id, user_id, vector, candidates, candidate_scores, updated_at) FROM STDIN"
        ) as copy:
            for idx, user_id in enumerate(user_ids.tolist()):
                found = best[idx] >= 0
                copy.write_row(
                    (
                        version.pk,
                        user_id,
                        vector_literal(users[idx]),
                        *pack_neighbors(item_ids[best[idx][found]], best_scores[idx][found]),
                        now,
                    )
                )
        artifact = pickle.dumps({"model": model, "item_ids": item_ids}, protocol=5)
        return ModelVersion.Serving.FACTORS, dims, artifact


def version_rows_delete(*, version_id: int) -> None:
    VersionItem.objects.filter(version_id=version_id).delete()
    UserVector.objects.filter(version_id=version_id).delete()


def neighbour_rows(
    *, version: ModelVersion, item_ids: Sequence[int] | None = None
) -> list[tuple[int, bytes | None, bytes | None]]:
    """(item id, packed neighbours, packed weights) of a neighbour version, by item id; of
    ``item_ids`` only when given."""
    qs = VersionItem.objects.filter(version=version)
    if item_ids is not None:
        qs = qs.filter(item_id__in=item_ids)
    return list(qs.order_by("item_id").values_list("item_id", "neighbors", "weights"))


def popular_item_ids(*, version: ModelVersion, items: QuerySet[Item], n: int) -> list[int]:
    """The ``n`` items of the queryset ``items`` most interacted with in the version's training
    data (ties by id)."""
    return list(
        VersionItem.objects.filter(version=version, popularity__gt=0, item__in=items)
        .order_by("-popularity", "item_id")
        .values_list("item_id", flat=True)[:n]
    )


# --- vectors (factor models) ----------------------------------------------------------------------


def item_vectors_read(*, version: ModelVersion, item_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """A factor version's vectors of these items, read in pgvector's binary form."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT item_id, vector_send(vector) FROM recommender_versionitem"
            " WHERE version_id = %s AND item_id = ANY(%s) AND vector IS NOT NULL",
            [version.pk, list(item_ids)],
        )
        return {item_id: vector_from_binary(packed) for item_id, packed in cursor.fetchall()}


def item_unit_vectors(
    *, version: ModelVersion, item_ids: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """(the ids that have a vector, in the order asked; their vectors scaled to unit length, one
    row each): what cosine similarities between items take. From the fitted model's factors
    and their norms (computed once per process and version) when the process holds it."""
    ids = np.asarray(item_ids, dtype=np.int64)
    fitted = fitted_model_load(version=version)
    if fitted is None:
        vectors = item_vectors_read(version=version, item_ids=ids.tolist())
        found = np.array([i for i in ids.tolist() if i in vectors], dtype=np.int64)
        if len(found) == 0:
            return found, np.zeros((0, int(version.dimensions or 0)), dtype=np.float32)
        m = np.stack([vectors[i] for i in found.tolist()])
        return found, m / (np.linalg.norm(m, axis=1, keepdims=True) + 1e-9)
    model, known = fitted
    pos = engine.positions_of(known, ids)
    hit = pos >= 0
    norms = _norm_order(model).norms
    rows = pos[hit]
    return ids[hit], model.item_factors[rows] / (norms[rows, None] + 1e-9)


# the model itself is kept beside its norm order: an id() is only unique while its object lives,
# and a model fitted later could otherwise be handed the order of one freed at the same address
_NORM_ORDERS: dict[int, tuple[engine.FactorRecommender, engine.NormOrder]] = {}


def _norm_order(model: engine.FactorRecommender) -> engine.NormOrder:
    """The fitted model's item factors by decreasing norm, computed once per process."""
    found = _NORM_ORDERS.get(id(model))
    if found is None or found[0] is not model:
        found = (model, engine.NormOrder.of(model.item_factors))
        _NORM_ORDERS.clear()  # one fitted model a process serves at a time
        _NORM_ORDERS[id(model)] = found
    return found[1]


# A stored user vector keeps the user's best USER_CANDIDATES items outside what they had when
# it was computed (training, or the refresh after their last interaction): a list's pool is
# 60 items for the default 20, and the rest is room for what the user has seen since and for
# filters. A list that needs more searches the catalog as before.
USER_CANDIDATES = 100


@dataclass(frozen=True)
class Candidates:
    """A user's stored best items by inner product with their stored vector, best first (ties
    by id): the exact answer of a search outside the items they had then."""

    ids: np.ndarray  # int64 item ids
    scores: np.ndarray  # float32

    @classmethod
    def of(cls, rows: Sequence[tuple[int, float]]) -> Candidates:
        """From nearest_exact's (item id, score) rows."""
        return cls(
            np.array([i for i, _ in rows], dtype=np.int64),
            np.array([s for _, s in rows], dtype=np.float32),
        )


# the user's stored vector in pgvector's binary form and their candidates; parameters: the
# version's and the user's ids. A list sends it with the user's history (recommender.lists):
# one round trip less.
USER_VECTOR_SQL = (
    "SELECT vector_send(vector), candidates, candidate_scores FROM recommender_uservector"
    " WHERE version_id = %s AND user_id = %s"
)


def user_vector_from_row(row: tuple | None) -> np.ndarray | None:
    """USER_VECTOR_SQL's row as the vector (None: no row)."""
    return vector_from_binary(row[0]) if row is not None and row[0] is not None else None


def user_candidates_from_row(row: tuple | None) -> Candidates | None:
    """USER_VECTOR_SQL's row as the candidates of its vector (None: no row, none stored)."""
    if row is None or row[0] is None or row[1] is None or row[2] is None:
        return None
    ids, scores = unpack_neighbors(row[1], row[2])
    return Candidates(ids, scores)


def user_vector_read(*, version: ModelVersion, user_id: int) -> np.ndarray | None:
    """The user's stored vector for a factor version (None until they are folded in)."""
    return user_row_read(version=version, user_id=user_id)[0]


def user_row_read(
    *, version: ModelVersion, user_id: int
) -> tuple[np.ndarray | None, Candidates | None]:
    """The user's stored vector and its candidates (None, None: not folded in yet)."""
    with connection.cursor() as cursor:
        cursor.execute(USER_VECTOR_SQL, [version.pk, user_id])
        row = cursor.fetchone()
    return user_vector_from_row(row), user_candidates_from_row(row)


def user_vector_write(
    *,
    version: ModelVersion,
    user_id: int,
    vector: np.ndarray | None,
    candidates: Candidates | None = None,
) -> None:
    """Store the user's vector and its candidates (None: delete it, the user has nothing the
    version knows; no candidates: lists search the catalog for this user)."""
    if vector is None:
        UserVector.objects.filter(version=version, user_id=user_id).delete()
        return
    packed = (None, None)
    if candidates is not None:
        packed = pack_neighbors(candidates.ids, candidates.scores)
    UserVector.objects.update_or_create(
        version=version,
        user_id=user_id,
        defaults={
            "vector": vector.tolist(),
            "candidates": packed[0],
            "candidate_scores": packed[1],
            "updated_at": timezone.now(),
        },
    )


# A user's candidates come from the exact search over the factors the process holds (it loads
# them for the list's evidence and for folding users in): read by decreasing norm, it costs
# 0.1-0.7 ms at 58k-149k items, where the HNSW scan took 3 ms and found 23-35 of the true 60
# (bench_scale's catalogs, 30 users with 5-100 likes). The index answers a process without the
# fitted model. pgvector 0.6 has no iterative index scans: an HNSW scan returns at most
# ``hnsw.ef_search`` rows (and SET LOCAL only lasts inside a transaction, so each search opens
# one), so a search that must skip more than INDEX_SEARCH_MAX rows goes exact in PostgreSQL.
EF_SEARCH_MAX = 1000
INDEX_SEARCH_MAX = 300


def _index_search(cursor, *, ef_search: int) -> None:  # noqa: ANN001 - a DB-API cursor
    cursor.execute(f"SET LOCAL hnsw.ef_search = {max(40, min(int(ef_search), EF_SEARCH_MAX))}")


def nearest_by_vector(
    *,
    version: ModelVersion,
    vector: np.ndarray,
    limit: int,
    excluded: Collection[int] = (),
    candidates: Candidates | None = None,
) -> list[tuple[int, float]]:
    """(item id, inner product) of the ``limit`` items nearest ``vector`` outside ``excluded``.

    From ``candidates`` (the stored vector's, read with it) when ``excluded`` leaves at least
    ``limit`` of them: ``excluded`` holds everything the user had when they were computed (their
    history has only grown since, or the refresh that follows any change has not run yet), so
    no item outside them can score higher. Else exactly over the fitted model's factors when
    this process holds them; else through the HNSW index when the version has one and the scan
    need not skip more than INDEX_SEARCH_MAX rows, and exactly in PostgreSQL otherwise (or when
    the index returned too few unseen rows), so a long history never runs the list dry.
    """
    skip = excluded if isinstance(excluded, set | frozenset) else set(excluded)
    if candidates is not None:
        found = _from_candidates(version, vector, candidates, limit, skip)
        if found is not None:
            return found
    if fitted_model_load(version=version) is not None:
        return nearest_exact(version=version, vector=vector, limit=limit, excluded=skip)
    want = limit + len(skip)
    if version.indexed and want <= INDEX_SEARCH_MAX:
        dim = int(version.dimensions or len(vector))
        literal = vector_literal(vector)
        with transaction.atomic(), connection.cursor() as cursor:
            _index_search(cursor, ef_search=want)
            cursor.execute(
                f"SELECT item_id, -(vector::vector({dim}) <#> %s::vector({dim}))"
                f" FROM recommender_versionitem WHERE version_id = {int(version.pk)}"
                f" ORDER BY vector::vector({dim}) <#> %s::vector({dim}) LIMIT %s",
                [literal, literal, want],
            )
            rows = [(int(i), float(s)) for i, s in cursor.fetchall() if i not in skip]
        if len(rows) >= limit:
            return rows[:limit]
    return nearest_exact(version=version, vector=vector, limit=limit, excluded=skip)


def _from_candidates(
    version: ModelVersion, vector: np.ndarray, candidates: Candidates, limit: int, skip: set[int]
) -> list[tuple[int, float]] | None:
    """The best ``limit`` of the stored candidates outside ``skip`` (None: too few left). Scored
    again over the fitted model's factors when this process holds them, as nearest_exact
    scores, so that either path gives the same floats and order."""
    ids = candidates.ids
    kept = np.fromiter((i not in skip for i in ids.tolist()), dtype=bool, count=len(ids))
    if int(kept.sum()) < limit:
        return None
    ids, scores = ids[kept], candidates.scores[kept]
    fitted = fitted_model_load(version=version)
    if fitted is not None:
        model, item_ids = fitted
        pos = engine.positions_of(item_ids, ids)
        if (pos >= 0).all():
            scores = model.item_factors[pos] @ np.asarray(vector, dtype=np.float32)
    order = np.lexsort((ids, -scores))[:limit]
    return [(int(i), float(s)) for i, s in zip(ids[order], scores[order], strict=True)]


def nearest_exact(
    *, version: ModelVersion, vector: np.ndarray, limit: int, excluded: Collection[int] = ()
) -> list[tuple[int, float]]:
    """The exact ``limit`` best items outside ``excluded``: the product with the fitted model's
    item factors (the same floats as the stored vectors), else an exact scan in PostgreSQL."""
    fitted = fitted_model_load(version=version)
    if fitted is None:
        literal = vector_literal(vector)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT item_id, -(vector <#> %s::vector) FROM recommender_versionitem"
                " WHERE version_id = %s AND vector IS NOT NULL AND item_id <> ALL(%s)"
                " ORDER BY vector <#> %s::vector LIMIT %s",
                [literal, version.pk, sorted(excluded), literal, limit],
            )
            return [(int(i), float(s)) for i, s in cursor.fetchall()]
    model, item_ids = fitted
    # the excluded items' positions by binary search in the sorted ids: a membership test of
    # every catalog item cost more than the product itself at 200k items
    pos = engine.positions_of(item_ids, np.fromiter(excluded, dtype=np.int64, count=len(excluded)))
    # exact, reading the items by decreasing norm until no other can enter (engine.mips): a full
    # product reads every factor, memory-bound at 3.6 ms for 149k items
    top, scores = engine.top_inner_products(_norm_order(model), vector, limit, pos[pos >= 0])
    order = np.lexsort((item_ids[top], -scores))
    return [(int(item_ids[i]), float(s)) for i, s in zip(top[order], scores[order], strict=True)]


def similar_by_vector(
    *, version: ModelVersion, item_id: int, limit: int
) -> list[tuple[int, float]]:
    """(item id, cosine similarity) of the ``limit`` items whose vectors are closest to this
    item's, the item itself left out. The item's vector is read first, so the search is one
    ordered scan of a constant vector: the cosine HNSW index when the version has one."""
    vector = item_vectors_read(version=version, item_ids=[item_id]).get(item_id)
    if vector is None:
        return []
    literal = vector_literal(vector)
    with transaction.atomic(), connection.cursor() as cursor:
        if version.indexed:
            _index_search(cursor, ef_search=limit + 1)
        cursor.execute(similar_sql(version=version, limit=limit + 1), [literal, literal])
        return [(int(i), float(s)) for i, s in cursor.fetchall() if i != item_id][:limit]


def similar_sql(*, version: ModelVersion, limit: int) -> str:
    """The similar-items query (two parameters: the item's vector twice); for EXPLAIN too."""
    dim = int(version.dimensions or 0)
    cast = f"::vector({dim})" if version.indexed else ""
    return (
        f"SELECT item_id, 1 - (vector{cast} <=> %s::vector{cast}) FROM recommender_versionitem"
        f" WHERE version_id = {int(version.pk)} AND vector IS NOT NULL"
        f" ORDER BY vector{cast} <=> %s::vector{cast} LIMIT {int(limit)}"
    )


def _index_name(version_id: int) -> str:
    return f"recommender_vi_hnsw_v{int(version_id)}"


def _cosine_index_name(version_id: int) -> str:
    return f"recommender_vi_hnsw_cos_v{int(version_id)}"


def vector_index_create(*, version_id: int, dims: int) -> None:
    """Two HNSW indexes on the version's rows: inner product (a user's candidates) and cosine
    (similar items); each ordering uses only an index built for its operator."""
    for name, ops in ((_index_name, "vector_ip_ops"), (_cosine_index_name, "vector_cosine_ops")):
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {name(version_id)} ON recommender_versionitem"
                f" USING hnsw ((vector::vector({int(dims)})) {ops})"
                f" WHERE version_id = {int(version_id)}"
            )
    with connection.cursor() as cursor:
        # fresh statistics, so that the planner sees a version's thousands of rows (and orders
        # through the index) instead of a guess from before they were written
        cursor.execute("ANALYZE recommender_versionitem")


def vector_index_drop(*, version_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {_index_name(version_id)}")
        cursor.execute(f"DROP INDEX IF EXISTS {_cosine_index_name(version_id)}")


# by id and creation time: a reused id (an emptied database) must not find another version's model
_FITTED: dict[tuple, tuple[engine.FactorRecommender, np.ndarray]] = {}


def fitted_model_load(
    *, version: ModelVersion
) -> tuple[engine.FactorRecommender, np.ndarray] | None:
    """(fitted factor model, its item ids) of a version, unpickled once per process (only our
    trainer writes this column)."""
    key = (version.pk, version.created_at)
    if key in _FITTED:
        return _FITTED[key]
    artifact = ModelVersion.objects.filter(pk=version.pk).values_list("artifact", flat=True).first()
    if not artifact:
        return None
    state = pickle.loads(bytes(artifact))  # noqa: S301 - written by model_train, never by users
    if len(_FITTED) >= 2:
        _FITTED.clear()
    _FITTED[key] = (state["model"], state["item_ids"])
    return _FITTED[key]


# --- dense item-item weights ------------------------------------------------------------------
# The neighbour table keeps each item's top-K weights (K = RECOMMENDER_NEIGHBOURS) in PostgreSQL;
# pruning EASE-family weights costs 1-3% NDCG (docs/MODELS.md). For catalogs up to
# RECOMMENDER_DENSE_MAX_ITEMS the full matrix is also saved as a .npy file under
# RECOMMENDER_MODEL_DIR and memory-mapped by every process (one copy in the page cache), so what
# is served is exactly what `evaluate` measures. A process that cannot see the file (another
# host without the shared volume) serves from the table.


def _model_dir() -> Path:
    # one folder per database: test databases and the development one never share files
    default = Path(settings.BASE_DIR) / "var" / "models"
    base = Path(getattr(settings, "RECOMMENDER_MODEL_DIR", default))
    return base / str(connection.settings_dict["NAME"])


def _dense_paths(version_id: int) -> tuple[Path, Path]:
    folder = _model_dir()
    return folder / f"v{int(version_id)}-weights.npy", folder / f"v{int(version_id)}-items.npy"


def dense_weights_write(
    *, version_id: int, model: engine.ItemItemRecommender, item_ids: np.ndarray
) -> None:
    W = model.weights
    if sp.issparse(W) or W.shape[0] > getattr(settings, "RECOMMENDER_DENSE_MAX_ITEMS", 20000):
        # served from its rows: a file under this id can only be another database's (one
        # recreated under the same name numbers its versions again), and serving reads a file
        # wherever there is one
        dense_weights_delete(version_id=version_id)
        return
    weights_path, items_path = _dense_paths(version_id)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = weights_path.with_suffix(".tmp.npy")
    np.save(tmp, np.ascontiguousarray(W, dtype=np.float32))
    np.save(items_path, np.asarray(item_ids, dtype=np.int64))
    os.replace(tmp, weights_path)  # readers never see a half-written file


def dense_weights_load(*, version_id: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(item ids, memory-mapped dense weights) of a version, if its file is here."""
    weights_path, items_path = _dense_paths(version_id)
    if not (weights_path.exists() and items_path.exists()):
        return None
    return np.load(items_path), np.load(weights_path, mmap_mode="r")


def dense_weights_delete(*, version_id: int) -> None:
    for path in _dense_paths(version_id):
        path.unlink(missing_ok=True)
