"""A user's scores under a model version, and each history item's part in them.

* neighbour models: the user's scores are the weighted sum of their history items' rows of the
  item-item weights, kept per process as one matrix (:class:`NeighbourIndex`); each history
  item's part in a candidate's score *is* the explanation (``history_item``).
* factor models: the user's vector (stored, or folded in from the history) searched in
  pgvector; the evidence is the history items whose vectors are closest to the candidate's.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import numpy as np
import scipy.sparse as sp
from django.conf import settings

from . import storage
from .engine import blas_threads, positions_of
from .evidence import PROFILE_ITEMS, strongest_contributions
from .history import History
from .models import ModelVersion

P = ParamSpec("P")
R = TypeVar("R")
# above this many stored weights a version is scored from its rows per request instead
NEIGHBOUR_CACHE_MAX_ENTRIES = 50_000_000

Contributions = dict[int, list[tuple[int, float]]]  # candidate -> [(history item, weight)]


def one_blas_thread(fn: Callable[P, R]) -> Callable[P, R]:
    """A request's numpy work runs on one BLAS thread: with more, OpenBLAS's idle workers spin
    between calls and take CPU from PostgreSQL and the other requests for no gain on matrices
    this small. The engine's own ``blas_threads`` decides for training."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with blas_threads(1):
            return fn(*args, **kwargs)

    return wrapper


@dataclass
class Scored:
    item_ids: np.ndarray  # candidate ids, best first
    scores: np.ndarray
    contributions: Contributions

    @classmethod
    def empty(cls) -> Scored:
        return cls(np.empty(0, np.int64), np.empty(0), {})


# --- neighbour models -------------------------------------------------------------------------------


@dataclass
class NeighbourIndex:
    """A neighbour version's weights as one matrix, kept in memory per process: loaded once per
    version, after which a user's scores are the sum of their history rows, in C."""

    item_ids: np.ndarray  # sorted catalog ids; position = matrix index
    # W[h, i]: what having h in the history adds to i's score. A CSR of the top-K table, or
    # the dense matrix memory-mapped from the version's weights file (shared by processes).
    W: sp.csr_matrix | np.ndarray

    def positions(self, ids: Iterable[int]) -> np.ndarray:
        pos = positions_of(self.item_ids, np.asarray(list(ids), dtype=np.int64))
        return pos[pos >= 0]


# Keyed by the version's id and creation time: ids restart when a database is emptied (a test
# flush, a fresh embedded database under a running process), and a reused id must not find the
# weights of the version that held it before.
_NEIGHBOUR_CACHE: dict[tuple, NeighbourIndex] = {}
_NEIGHBOUR_CACHE_LOCK = threading.Lock()


def _cache_key(version: ModelVersion) -> tuple:
    return (version.pk, version.created_at)


def _remember(key: tuple, index: NeighbourIndex) -> NeighbourIndex:
    # two versions at most: the active one and the one activated next
    if len(_NEIGHBOUR_CACHE) >= 2:
        _NEIGHBOUR_CACHE.clear()
    _NEIGHBOUR_CACHE[key] = index
    return index


def neighbour_index(version: ModelVersion) -> NeighbourIndex | None:
    """The version's weights in this process (None: too large, score from its rows)."""
    key = _cache_key(version)
    cached = _NEIGHBOUR_CACHE.get(key)
    if cached is not None:
        return cached
    dense = storage.dense_weights_load(version_id=version.pk)
    # a file of another catalog under the same version id (a database recreated beside the
    # same model folder) is never served
    if dense is not None and len(dense[0]) == (version.n_items or 0):
        with _NEIGHBOUR_CACHE_LOCK:
            return _remember(key, NeighbourIndex(item_ids=dense[0], W=dense[1]))
    n_items = version.n_items or 0
    k = int(getattr(settings, "RECOMMENDER_NEIGHBOURS", 200))
    if n_items * k > NEIGHBOUR_CACHE_MAX_ENTRIES:
        return None
    with _NEIGHBOUR_CACHE_LOCK:
        if key in _NEIGHBOUR_CACHE:
            return _NEIGHBOUR_CACHE[key]
        rows = storage.neighbour_rows(version=version)
        item_ids = np.array([r[0] for r in rows], dtype=np.int64)
        indptr = [0]
        targets: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        for _item_id, packed_ids, packed_w in rows:
            if packed_ids:
                ids, w = storage.unpack_neighbors(packed_ids, packed_w)
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
        return _remember(key, NeighbourIndex(item_ids=item_ids, W=W))


def score_neighbours(
    version: ModelVersion, history: History, limit: int, excluded: set[int] | None = None
) -> Scored:
    """The ``limit`` best items for ``history`` (its own items and ``excluded`` left out)."""
    index = neighbour_index(version)
    if index is None:
        return _score_neighbours_from_rows(version, history, limit)
    h = index.positions(history.liked)
    if len(h) == 0:
        return Scored.empty()
    w = np.array([history.weights.get(i, 1.0) for i in index.item_ids[h].tolist()], np.float32)
    dense = isinstance(index.W, np.ndarray)
    if dense:
        # dense weights: the history as a sparse row times the memory map, which adds each
        # history row in place, in ascending order (copying the rows out first, then
        # multiplying, read every row twice: twice the time for a history of a few hundred)
        x = sp.csr_matrix((w, (np.zeros(len(h), dtype=np.int64), h)), shape=(1, index.W.shape[0]))
        scores = np.asarray(x @ index.W, dtype=np.float64).ravel()
    else:
        # the weighted sum of the history's rows as one vector-matrix product (no weighted copy
        # of the rows); the same float32 products, summed in the same order
        rows = index.W[h]
        scores = np.asarray(w @ rows, dtype=np.float64).ravel()
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
        part = rows[:, top].toarray().astype(np.float32, copy=False) * w[:, None]
    contributions = strongest_contributions(part, index.item_ids[h], index.item_ids[top])
    return Scored(index.item_ids[top], scores[top], contributions)


def _score_neighbours_from_rows(version: ModelVersion, history: History, limit: int) -> Scored:
    """The same scores from the version's rows in SQL (catalogs too large to keep in memory)."""
    sources, targets, weights = [], [], []
    for item_id, packed_ids, packed_w in storage.neighbour_rows(
        version=version, item_ids=history.liked
    ):
        if not packed_ids:
            continue
        neighbors, w = storage.unpack_neighbors(packed_ids, packed_w)
        sources.append(np.full(len(neighbors), item_id, dtype=np.int64))
        targets.append(neighbors)
        weights.append(w.astype(np.float64) * history.weights.get(item_id, 1.0))
    if not targets:
        return Scored.empty()
    src = np.concatenate(sources)
    tgt = np.concatenate(targets)
    wts = np.concatenate(weights)
    uniq, inverse = np.unique(tgt, return_inverse=True)
    scores = np.bincount(inverse, weights=wts, minlength=len(uniq))
    order = np.argsort(-scores, kind="stable")
    top = order[: max(limit, 1)]
    top_ids = uniq[top]
    keep = np.isin(tgt, top_ids)
    contributions: Contributions = {}
    for s_, t, w in zip(src[keep].tolist(), tgt[keep].tolist(), wts[keep].tolist(), strict=True):
        contributions.setdefault(t, []).append((s_, w))
    return Scored(top_ids, scores[top], contributions)


def explain_neighbours(
    version: ModelVersion, history: History, item_id: int
) -> tuple[float, list[tuple[int, float]] | None]:
    """One item's score for this history and each history item's part in it."""
    index = neighbour_index(version)
    if index is None:
        scored = _score_neighbours_from_rows(version, history, limit=10**6)
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


# --- factor models ----------------------------------------------------------------------------------


def user_vector_compute(*, version: ModelVersion, item_ids: list[int]) -> np.ndarray | None:
    """A factor model's vector for a user with these liked items (fold-in, milliseconds)."""
    if version.serving != ModelVersion.Serving.FACTORS or not item_ids:
        return None
    fitted = storage.fitted_model_load(version=version)
    if fitted is None:
        return None
    model, known = fitted
    pos = positions_of(known, np.asarray(item_ids, dtype=np.int64))
    history = pos[pos >= 0]
    if len(history) == 0:
        return None
    return np.asarray(model.user_vector(history), dtype=np.float32)


def user_vector(version: ModelVersion, user_id: int, history: History) -> np.ndarray | None:
    """The user's stored vector, else one folded in from ``history`` now."""
    stored = storage.user_vector_read(version=version, user_id=user_id)
    if stored is not None:
        return stored
    return user_vector_compute(version=version, item_ids=history.liked)


def score_factors(
    version: ModelVersion,
    user_id: int,
    history: History,
    limit: int,
    excluded: set[int],
    vector: np.ndarray | None = None,
    candidates: storage.Candidates | None = None,
    explain: bool = True,
) -> Scored:
    """The ``limit`` best items outside ``excluded`` by inner product with the user's vector
    (``vector`` and its stored ``candidates``: the caller's, read with the history): from the
    candidates, else exactly over the fitted model's factors, or through pgvector's index in a
    process without them (see storage.nearest_by_vector). ``explain=False``: without their
    contributions (``factor_contributions``), for a caller that lists a few of them."""
    if vector is None:
        vector, candidates = storage.user_row_read(version=version, user_id=user_id)
    if vector is None:
        vector, candidates = user_vector_compute(version=version, item_ids=history.liked), None
    if vector is None:
        return Scored.empty()
    rows = storage.nearest_by_vector(
        version=version, vector=vector, limit=limit, excluded=excluded, candidates=candidates
    )
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    scores = np.array([r[1] for r in rows], dtype=np.float64)
    return Scored(ids, scores, factor_contributions(version, history, ids) if explain else {})


def factor_contributions(
    version: ModelVersion, history: History, candidates: np.ndarray
) -> Contributions:
    """For vector models: the history items whose vectors are closest (cosine) to each
    candidate's, up to MAX_EVIDENCE_ITEMS with a positive similarity."""
    liked = history.liked[:PROFILE_ITEMS]
    if not liked or len(candidates) == 0:
        return {}
    h_ids, h_unit = storage.item_unit_vectors(version=version, item_ids=liked)
    c_ids, c_unit = storage.item_unit_vectors(version=version, item_ids=candidates)
    if len(h_ids) == 0 or len(c_ids) == 0:
        return {}
    sims = h_unit @ c_unit.T  # history x candidates
    return strongest_contributions(sims, h_ids, c_ids, rest=False)


def score_factor_item(version: ModelVersion, user_id: int, history: History, item_id: int) -> float:
    """One item's score: the inner product of the user's and the item's vectors (0 if either is
    missing)."""
    vector = user_vector(version, user_id, history)
    item = storage.item_vectors_read(version=version, item_ids=[item_id]).get(item_id)
    if vector is None or item is None:
        return 0.0
    return float(np.dot(vector, item))
