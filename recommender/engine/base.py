"""The engine's interface: one abstract ``Recommender`` and our own result dataclasses.

Conventions, shared by every model:

- Items and users are *indices* (0..n-1) into the columns / rows of the training matrix ``X``
  (users x items, CSR, float32; 1.0 per interaction unless a model weights it itself).
  Mapping to database ids is the caller's job (see ``recommender.engine.data``).
- A *history* is a 1-D integer array of item indices (duplicates are ignored).
- Scores are float32; higher is better. Items a model cannot score get ``-inf``.
- Nothing here returns implicit's objects.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from ._threads import blas_threads, max_threads, threads_for

__all__ = [
    "Progress",
    "Scored",
    "Contribution",
    "NeighbourTable",
    "Recommender",
    "ItemItemRecommender",
    "FactorRecommender",
    "NotFittedError",
    "CatalogTooLargeError",
    "history_matrix",
    "top_n",
]

Progress = Callable[[float], None]


class NotFittedError(RuntimeError):
    """A model was used before ``fit``."""


class CatalogTooLargeError(ValueError):
    """A dense item-item model was asked to fit more items than its configured limit."""


@dataclass(frozen=True, slots=True)
class Scored:
    """One ranked item: its index and the model's score."""

    item: int
    score: float


@dataclass(frozen=True, slots=True)
class Contribution:
    """How much one history item contributed to an item's score (same units as the score)."""

    item: int
    weight: float


@dataclass(frozen=True)
class NeighbourTable:
    """Sparse item-item weights for serving from SQL.

    Rows are ``(item[r], neighbour[r], weight[r])`` meaning W[item, neighbour] = weight, and a
    user's score for item ``i`` is ``sum(W[h, i] for h in history)``::

        SELECT neighbour, SUM(weight) AS score FROM neighbours
        WHERE item = ANY(%(history)s) GROUP BY neighbour ORDER BY score DESC LIMIT 50;

    (then drop the history items). At most ``k`` rows per source ``item``; no self-pairs.
    """

    item: np.ndarray  # int32, source (history) item index
    neighbour: np.ndarray  # int32, target item index
    weight: np.ndarray  # float32
    n_items: int
    k: int

    def __len__(self) -> int:
        return len(self.item)

    def to_csr(self) -> sp.csr_matrix:
        return sp.csr_matrix(
            (self.weight, (self.item, self.neighbour)),
            shape=(self.n_items, self.n_items),
            dtype=np.float32,
        )

    def score(self, history: np.ndarray) -> np.ndarray:
        """Scores of all items for one history, exactly as the SQL above computes them."""
        h = np.unique(np.asarray(history, dtype=np.int64))
        mask = np.isin(self.item, h)
        out = np.zeros(self.n_items, dtype=np.float32)
        np.add.at(out, self.neighbour[mask], self.weight[mask])
        return out


def history_matrix(histories: list[np.ndarray] | np.ndarray, n_items: int) -> sp.csr_matrix:
    """Binary CSR (len(histories) x n_items) from item-index arrays (one row per history)."""
    if isinstance(histories, np.ndarray) and histories.ndim == 1:
        histories = [histories]
    rows, cols = [], []
    for r, h in enumerate(histories):
        h = np.unique(np.asarray(h, dtype=np.int64))
        if len(h) and (h[0] < 0 or h[-1] >= n_items):
            raise IndexError(f"history item index out of range 0..{n_items - 1}: {h[[0, -1]]}")
        rows.append(np.full(len(h), r, dtype=np.int64))
        cols.append(h)
    row = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    col = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    return sp.csr_matrix(
        (np.ones(len(row), dtype=np.float32), (row, col)),
        shape=(len(histories), n_items),
        dtype=np.float32,
    )


def top_n(scores: np.ndarray, n: int, tiebreak: np.ndarray | None = None) -> list[Scored]:
    """The ``n`` best finite scores, best first; ties by ``tiebreak`` (higher first), then index."""
    finite = np.flatnonzero(np.isfinite(scores))
    if n <= 0 or len(finite) == 0:
        return []
    s = scores[finite]
    if len(finite) > n:
        # keep everything tied with the n-th score so the tie-break can act
        kth = np.partition(s, len(s) - n)[len(s) - n]
        keep = s >= kth
        finite, s = finite[keep], s[keep]
    keys = [finite, -s] if tiebreak is None else [finite, -tiebreak[finite], -s]
    order = np.lexsort(keys)[:n]
    return [Scored(int(i), float(v)) for i, v in zip(finite[order], s[order], strict=True)]


class Recommender(abc.ABC):
    """Common interface of every model (see the module docstring for conventions)."""

    #: registry name of the model class
    name: ClassVar[str] = "base"
    #: "item_item" (exports a neighbour table), "factor" (exports item factors) or "other"
    kind: ClassVar[str] = "other"
    #: True if ``fit`` also accepts ``timestamps=`` (CSR, seconds, the sparsity of ``X``) and
    #: ``score_users`` accepts ``timestamps_rows=``; evaluation then passes them
    uses_timestamps: ClassVar[bool] = False

    n_users: int = 0
    n_items: int = 0
    _item_popularity: np.ndarray | None = None

    # ------------------------------------------------------------------ lifecycle
    def fit(self, X: sp.csr_matrix, progress: Progress | None = None) -> Self:
        """Train on ``X`` (users x items). ``progress(fraction)`` is called with 0..1."""
        X = _check_matrix(X)
        self.n_users, self.n_items = X.shape
        self._item_popularity = np.asarray(X.getnnz(axis=0), dtype=np.float32)
        self._fit(X, progress or _no_progress)
        if progress is not None:
            progress(1.0)
        return self

    @abc.abstractmethod
    def _fit(self, X: sp.csr_matrix, progress: Progress) -> None: ...

    @property
    def is_fitted(self) -> bool:
        return self._item_popularity is not None

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X) first")

    @property
    def params(self) -> dict[str, Any]:
        """Constructor parameters (what ``get_model(name, **params)`` rebuilds)."""
        return dict(self._params)

    _params: dict[str, Any] = {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ scoring
    @abc.abstractmethod
    def score_users(self, X_rows: sp.csr_matrix) -> np.ndarray:
        """Dense float32 scores (n_rows x n_items) for a batch of histories (CSR rows).

        History items are *not* masked here (evaluation and ``recommend`` do it)."""

    def recommend(
        self, history: np.ndarray, n: int = 10, exclude: np.ndarray | None = None
    ) -> list[Scored]:
        """Top ``n`` items for one (possibly new) user's history; never returns a history or
        ``exclude`` item. Ties break towards the more popular item."""
        self._require_fitted()
        history = np.asarray(history, dtype=np.int64)
        scores = self.score_users(history_matrix(history, self.n_items))[0].astype(np.float32)
        scores[history] = -np.inf
        if exclude is not None and len(exclude):
            scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
        return top_n(scores, n, tiebreak=self._item_popularity)

    @abc.abstractmethod
    def similar_items(self, item: int, n: int = 10) -> list[Scored]:
        """Items most similar to ``item`` (never ``item`` itself)."""

    @abc.abstractmethod
    def explain(self, history: np.ndarray, item: int, top: int = 5) -> list[Contribution]:
        """History items that contributed most to ``item``'s score, largest first.

        Only items of ``history`` appear. Empty for models with no per-item attribution."""


def _no_progress(_: float) -> None:
    return None


def _check_matrix(X: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    if not sp.issparse(X):
        raise TypeError(f"X must be a scipy.sparse matrix (users x items), got {type(X).__name__}")
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sum_duplicates()
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X is empty: shape {X.shape}")
    if X.nnz and (not np.all(np.isfinite(X.data)) or X.data.min() < 0):
        raise ValueError("X must hold finite, non-negative interaction weights")
    return X


class ItemItemRecommender(Recommender):
    """A model whose scores are ``X_rows @ W`` for an item x item weight matrix ``W``.

    ``W[h, i]`` is how much having ``h`` in the history adds to item ``i``'s score, so
    ``explain`` is exact: the contributions of all history items sum to the score.
    Subclasses set ``self._W`` (dense ndarray or CSR, float32, zero diagonal) in ``_fit``.
    """

    kind = "item_item"
    _W: np.ndarray | sp.csr_matrix | None = None

    @property
    def weights(self) -> np.ndarray | sp.csr_matrix:
        self._require_fitted()
        assert self._W is not None
        return self._W

    def score_users(self, X_rows: sp.csr_matrix) -> np.ndarray:
        W = self.weights
        X_rows = sp.csr_matrix(X_rows, dtype=np.float32)
        out = X_rows @ W
        if sp.issparse(out):
            out = out.toarray()
        return np.asarray(out, dtype=np.float32)

    def _row(self, item: int) -> np.ndarray:
        W = self.weights
        if not 0 <= item < self.n_items:
            raise IndexError(f"item index {item} out of range 0..{self.n_items - 1}")
        row = W[item]
        return np.asarray(row.toarray()).ravel() if sp.issparse(row) else np.array(row)

    def similar_items(self, item: int, n: int = 10) -> list[Scored]:
        """Items that ``item`` most promotes (largest positive ``W[item, j]``)."""
        row = self._row(item).astype(np.float32)
        row[row <= 0] = -np.inf
        row[item] = -np.inf
        return top_n(row, n, tiebreak=self._item_popularity)

    def explain(self, history: np.ndarray, item: int, top: int = 5) -> list[Contribution]:
        self._require_fitted()
        h = np.unique(np.asarray(history, dtype=np.int64))
        h = h[h != item]
        if len(h) == 0:
            return []
        W = self.weights
        col = W[h, item]
        col = np.asarray(col.toarray()).ravel() if sp.issparse(col) else np.asarray(col).ravel()
        order = np.lexsort((h, -col))[: max(0, top)]
        return [Contribution(int(h[j]), float(col[j])) for j in order if col[j] != 0]

    def neighbour_table(self, k: int = 200) -> NeighbourTable:
        """The ``k`` largest-magnitude weights of every row of ``W`` (negatives kept: they
        matter for EASE-family models), as a sparse table for SQL serving."""
        W = self.weights
        return prune_rows(W, k)


def prune_rows(W: np.ndarray | sp.csr_matrix, k: int) -> NeighbourTable:
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    n = W.shape[0]
    block = 1024

    def prune(start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        stop = min(n, start + block)
        if sp.issparse(W):
            chunk = W[start:stop].toarray()
        else:
            chunk = np.array(W[start:stop], dtype=np.float32)
        chunk[np.arange(stop - start), np.arange(start, stop)] = 0.0  # no self-pairs
        kk = min(k, chunk.shape[1])
        idx = np.argpartition(-np.abs(chunk), kk - 1, axis=1)[:, :kk]
        vals = np.take_along_axis(chunk, idx, axis=1)
        r = np.repeat(np.arange(start, stop), kk).reshape(stop - start, kk)
        nz = vals != 0
        return r[nz], idx[nz], vals[nz]

    # blocks on the engine's threads: numpy's partition releases the GIL (1.2 s -> 0.7 s for
    # ml-latest-small's 9.7k x 9.7k on two cores)
    with ThreadPoolExecutor(max_workers=max_threads()) as pool:
        parts = list(pool.map(prune, range(0, n, block)))
    return NeighbourTable(
        item=np.concatenate([p[0] for p in parts]).astype(np.int32),
        neighbour=np.concatenate([p[1] for p in parts]).astype(np.int32),
        weight=np.concatenate([p[2] for p in parts]).astype(np.float32),
        n_items=n,
        k=k,
    )


class FactorRecommender(Recommender):
    """A model whose score is ``user_vector(history) @ item_factors[i]`` (inner product).

    Serving from pgvector: store ``item_factors`` rows, compute ``user_vector(history)`` and
    order by inner product (``<#>``)."""

    kind = "factor"
    _item_factors: np.ndarray | None = None

    @property
    def item_factors(self) -> np.ndarray:
        """(n_items x k) float32; a score is exactly ``user_vector @ item_factors[i]``."""
        self._require_fitted()
        assert self._item_factors is not None
        return self._item_factors

    @abc.abstractmethod
    def user_vectors(self, X_rows: sp.csr_matrix) -> np.ndarray:
        """(n_rows x k) float32 user vectors folded in from CSR history rows."""

    def user_vector(self, history: np.ndarray) -> np.ndarray:
        """Fold-in: the vector of a (possibly new) user from their history alone."""
        self._require_fitted()
        return self.user_vectors(history_matrix(np.asarray(history), self.n_items))[0]

    def score_users(self, X_rows: sp.csr_matrix) -> np.ndarray:
        U = self.user_vectors(sp.csr_matrix(X_rows, dtype=np.float32))
        with blas_threads(threads_for(U.shape[0])):
            return (U @ self.item_factors.T).astype(np.float32, copy=False)

    def similar_items(self, item: int, n: int = 10) -> list[Scored]:
        """Cosine similarity of item factors."""
        V = self.item_factors
        if not 0 <= item < self.n_items:
            raise IndexError(f"item index {item} out of range 0..{self.n_items - 1}")
        norms = np.linalg.norm(V, axis=1)
        with blas_threads(1):
            sims = (V @ V[item]) / np.maximum(norms * norms[item], 1e-12)
        sims = sims.astype(np.float32)
        sims[item] = -np.inf
        sims[norms == 0] = -np.inf
        return top_n(sims, n, tiebreak=self._item_popularity)
