"""Session-aware EASE: a closed-form item-item model whose Gram matrix also counts
co-occurrence *within short windows of a user's timeline*, scored with a recency weight.

MovieLens users rate in sessions, and items rated close together in time are much more
related than two items somewhere in the same long history. ``SessionEASE`` adds that signal
to the Gram matrix of the default model (``wedlae``) and solves the same EDLAE closed form:

    G = Xw' Xw + alpha * S' S

- ``Xw = diag(n_u^(-user_exponent/2)) X`` (as in ``wedlae``);
- ``S`` has one row per *window* of a user's chronological history (timestamp, ties by item
  id): windows of ``window`` consecutive items every ``stride`` items (overlapping; the
  last one is aligned with the end of the history), each row scaled by
  ``len(window)^(-window_exponent/2)``. Two overlapping-window families make the weight of
  a pair decrease with its distance in the user's sequence (a triangular kernel of width
  ``window``), which is a positive semi-definite kernel, so ``G`` stays a Gram matrix.
- ``B = I - P diag(1/diag(P))``, ``P = (G + Lambda)^-1``, ``Lambda = lam + dropout/(1 -
  dropout) diag(G)``; ``P`` comes from the Woodbury identity over the rows of
  ``Z = [Xw; sqrt(alpha) S]`` exploiting that ``Z`` is sparse (cost O(rows^3 + nnz * items),
  rows = users + windows).

Scoring (what the serving layer must do): with ``pos_h`` = 0 for the user's latest history
item, 1 for the one before, ... (by timestamp, ties: the larger item index counts as later)

    score(i) = sum over history items h of W[h, i] * (1 + recency * exp(-pos_h / recency_tau))

so it is still an item-item model (``weights`` / ``neighbour_table`` are ``W``); only the
per-history-item weight depends on the user's own timestamps. Without timestamps every
history item weighs 1 (plain ``X @ W``), and a model fitted without timestamps has no
window rows (it is then exactly ``wedlae``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from .base import (
    CatalogTooLargeError,
    ItemItemRecommender,
    Progress,
    check_matrix,
    history_matrix,
    top_n,
)
from .ease import sparse_dual_ease, user_weighted

__all__ = [
    "SessionEASE",
    "window_rows",
    "recency_weights",
    "recency_history",
    "session_design",
    "sparse_dual_ease",
]


def _chronological(indices: np.ndarray, stamps: np.ndarray) -> np.ndarray:
    """Positions of one user's entries in chronological order (timestamp, then item)."""
    return np.lexsort((indices, stamps))


def window_rows(
    X: sp.csr_matrix,
    T: sp.csr_matrix,
    window: int,
    stride: int,
    window_exponent: float = 0.5,
) -> sp.csr_matrix:
    """The window matrix ``S`` (windows x items) described in the module docstring.

    ``T`` holds the timestamps with exactly the sparsity of ``X``."""
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got {window}, {stride}")
    rows, cols, vals = [], [], []
    r = 0
    for u in range(X.shape[0]):
        a, b = X.indptr[u], X.indptr[u + 1]
        n = b - a
        if n == 0:
            continue
        seq = X.indices[a:b][_chronological(X.indices[a:b], T.data[a:b])]
        if n <= window:
            starts = [0]
        else:
            starts = list(range(0, n - window + 1, stride))
            if starts[-1] + window < n:
                starts.append(n - window)
        for s in starts:
            w = seq[s : s + window]
            rows.append(np.full(len(w), r, dtype=np.int64))
            cols.append(w)
            vals.append(np.full(len(w), float(len(w)) ** (-window_exponent / 2.0)))
            r += 1
    if r == 0:
        return sp.csr_matrix((0, X.shape[1]), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
        shape=(r, X.shape[1]),
        dtype=np.float32,
    )


def recency_weights(
    indices: np.ndarray, stamps: np.ndarray, recency: float, tau: float
) -> np.ndarray:
    """Per-history-item weight ``1 + recency * exp(-pos / tau)`` (``pos`` 0 = latest)."""
    n = len(indices)
    pos = np.empty(n, dtype=np.float64)
    pos[_chronological(indices, stamps)] = np.arange(n)[::-1]
    return (1.0 + recency * np.exp(-pos / tau)).astype(np.float32)


def session_design(
    X: sp.csr_matrix,
    T: sp.csr_matrix | None,
    *,
    user_exponent: float,
    window: int,
    stride: int,
    window_weight: float,
    window_exponent: float,
) -> sp.csr_matrix:
    """``Z = [Xw; sqrt(window_weight) S]``, the design whose Gram matrix ``SessionEASE``
    solves (``Xw`` alone without timestamps, with all of them equal - no order to cut
    windows from - or with ``window_weight`` 0)."""
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sort_indices()
    parts = [user_weighted(X, user_exponent)]
    ordered = T is not None and T.nnz > 1 and bool(np.any(T.data != T.data[0]))
    if ordered and window_weight > 0:
        S = window_rows(X, T, window, stride, window_exponent)
        parts.append(S * np.float32(np.sqrt(window_weight)))
    return sp.vstack(parts).tocsr()


def recency_history(
    X_rows: sp.csr_matrix, timestamps_rows: sp.csr_matrix, recency: float, tau: float
) -> sp.csr_matrix:
    """``X_rows`` with each entry multiplied by its recency weight (same sparsity): a binary
    history becomes its recency weights, a value-weighted one (``engine.values``) keeps its
    weights times the recency weight."""
    X_rows = sp.csr_matrix(X_rows, dtype=np.float32)
    X_rows.sort_indices()
    T = sp.csr_matrix(timestamps_rows, dtype=np.float64)
    T.sort_indices()
    if T.shape != X_rows.shape or not np.array_equal(T.indptr, X_rows.indptr):
        raise ValueError("timestamps_rows must have exactly the sparsity of X_rows")
    out = X_rows.copy()
    for u in range(out.shape[0]):
        a, b = out.indptr[u], out.indptr[u + 1]
        if b > a:
            out.data[a:b] *= recency_weights(out.indices[a:b], T.data[a:b], recency, tau)
    return out


class SessionEASE(ItemItemRecommender):
    """EDLAE on a user- and window-weighted Gram matrix, scored with a recency weight (see
    the module docstring). Needs timestamps to differ from ``wedlae``."""

    name = "session_ease"
    uses_timestamps: ClassVar[bool] = True

    def __init__(
        self,
        lam: float = 20.0,
        dropout: float = 0.1,
        user_exponent: float = 0.5,
        window: int = 30,
        stride: int = 15,
        window_weight: float = 0.3,
        window_exponent: float = 0.5,
        recency: float = 1.0,
        recency_tau: float = 10.0,
        max_items: int = 20_000,
    ) -> None:
        self._params: dict[str, Any] = dict(
            lam=lam,
            dropout=dropout,
            user_exponent=user_exponent,
            window=window,
            stride=stride,
            window_weight=window_weight,
            window_exponent=window_exponent,
            recency=recency,
            recency_tau=recency_tau,
            max_items=max_items,
        )
        self._T: sp.csr_matrix | None = None

    def fit(
        self,
        X: sp.csr_matrix,
        progress: Progress | None = None,
        timestamps: sp.csr_matrix | None = None,
    ) -> Self:
        """``timestamps``: CSR (seconds) with exactly the sparsity of ``X``; optional."""
        X = check_matrix(X)
        self._T = None
        if timestamps is not None:
            T = sp.csr_matrix(timestamps, dtype=np.float64)
            T.sort_indices()
            Xs = X.copy()
            Xs.sort_indices()
            if T.shape != Xs.shape or not (
                np.array_equal(T.indptr, Xs.indptr) and np.array_equal(T.indices, Xs.indices)
            ):
                raise ValueError("timestamps must have exactly the sparsity of X")
            self._T = T
        try:
            return super().fit(X, progress)
        finally:
            self._T = None

    def _fit(self, X: sp.csr_matrix, progress: Progress) -> None:
        p = self._params
        n_items = X.shape[1]
        if n_items > p["max_items"]:
            raise CatalogTooLargeError(
                f"session_ease needs a dense {n_items} x {n_items} matrix: {n_items} items "
                f"exceed max_items={p['max_items']}"
            )
        Z = session_design(
            X,
            self._T,
            user_exponent=p["user_exponent"],
            window=p["window"],
            stride=p["stride"],
            window_weight=p["window_weight"],
            window_exponent=p["window_exponent"],
        )
        progress(0.1)
        self._W = sparse_dual_ease(Z, p["lam"], p["dropout"])

    def history_weights(
        self, X_rows: sp.csr_matrix, timestamps_rows: sp.csr_matrix
    ) -> sp.csr_matrix:
        """``X_rows`` with each entry multiplied by its recency weight (same sparsity)."""
        p = self._params
        return recency_history(X_rows, timestamps_rows, p["recency"], p["recency_tau"])

    def score_users(
        self, X_rows: sp.csr_matrix, timestamps_rows: sp.csr_matrix | None = None
    ) -> np.ndarray:
        if timestamps_rows is not None and self._params["recency"]:
            X_rows = self.history_weights(X_rows, timestamps_rows)
        return super().score_users(X_rows)

    def recommend(
        self,
        history: np.ndarray,
        n: int = 10,
        exclude: np.ndarray | None = None,
        timestamps: np.ndarray | None = None,
    ):
        """As ``Recommender.recommend``; ``timestamps`` (aligned with ``history``, seconds)
        switches on the recency weight."""
        if timestamps is None:
            return super().recommend(history, n, exclude)
        self._require_fitted()
        history = np.asarray(history, dtype=np.int64)
        stamps = np.asarray(timestamps, dtype=np.float64)
        if stamps.shape != history.shape:
            raise ValueError("timestamps must align with history")
        # duplicates: keep the latest stamp of each item
        order = np.lexsort((stamps, history))
        h, t = history[order], stamps[order]
        last = np.r_[h[1:] != h[:-1], True]
        h, t = h[last], t[last]
        Xr = history_matrix(h, self.n_items)
        Tr = sp.csr_matrix((t, Xr.indices.copy(), Xr.indptr.copy()), shape=Xr.shape)
        scores = self.score_users(Xr, Tr)[0].astype(np.float32)
        scores[h] = -np.inf
        if exclude is not None and len(exclude):
            scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
        return top_n(scores, n, tiebreak=self._item_popularity)
