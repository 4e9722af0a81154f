"""Neighbourhood item-item models: implicit's item-kNN and RP3beta (Paudel et al. 2017)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from ._implicit import implicit_modules, implicit_threads
from ._threads import blas_threads, max_threads
from .base import CatalogTooLargeError, ItemItemRecommender, Progress

__all__ = ["ItemKNN", "RP3Beta", "rp3_query_scores"]


class ItemKNN(ItemItemRecommender):
    """implicit.nearest_neighbours: ``CosineRecommender``, ``BM25Recommender`` or
    ``TFIDFRecommender``, keeping ``K`` neighbours per item. ``W`` is implicit's similarity
    matrix (sparse, at most K entries per row) with its diagonal removed."""

    name = "itemknn"

    def __init__(
        self,
        K: int = 100,
        similarity: Literal["cosine", "bm25", "tfidf"] = "cosine",
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
    ) -> None:
        if similarity not in ("cosine", "bm25", "tfidf"):
            raise ValueError(f"similarity must be cosine, bm25 or tfidf, got {similarity!r}")
        self._params: dict[str, Any] = dict(
            K=K, similarity=similarity, bm25_k1=bm25_k1, bm25_b=bm25_b
        )

    def _fit(self, X: sp.csr_matrix, progress: Progress) -> None:
        nn = implicit_modules()["nn"]
        p = self._params
        # Same weighting as implicit's Cosine/TFIDF/BM25Recommender.fit, converted to CSR
        # here (implicit hands a COO matrix to its kNN kernel and warns about it).
        Xt = X.T.tocsr()
        if p["similarity"] == "cosine":
            weighted = nn.normalize(Xt).T
        elif p["similarity"] == "tfidf":
            weighted = nn.normalize(nn.tfidf_weight(Xt)).T
        else:
            weighted = nn.bm25_weight(Xt, p["bm25_k1"], p["bm25_b"]).T
        weighted = sp.csr_matrix(weighted, dtype=np.float64)  # the kNN kernel wants double
        with implicit_threads():
            model = nn.ItemItemRecommender(K=p["K"], num_threads=max_threads())
            model.fit(weighted, show_progress=False)
        W = sp.csr_matrix(model.similarity, dtype=np.float32)
        W.setdiag(0)
        W.eliminate_zeros()
        self._W = W


class RP3Beta(ItemItemRecommender):
    """RP3beta: 3-step random-walk item-item transition probabilities, each raised to
    ``alpha``, divided by the target's popularity^``beta``, pruned to the ``K`` largest
    entries per row (``K=None``: the dense matrix, unpruned). Dense computation: refuses
    catalogs above ``max_items``."""

    name = "rp3beta"

    def __init__(
        self, alpha: float = 0.8, beta: float = 0.5, K: int | None = 200, max_items: int = 20_000
    ) -> None:
        self._params: dict[str, Any] = dict(alpha=alpha, beta=beta, K=K, max_items=max_items)

    def _fit(self, X: sp.csr_matrix, progress: Progress) -> None:
        p = self._params
        n_items = X.shape[1]
        if n_items > p["max_items"]:
            raise CatalogTooLargeError(
                f"RP3beta is dense in items: {n_items} items exceed max_items={p['max_items']}"
            )
        Piu, Pui, scale = _rp3_walk(X, p["alpha"], p["beta"])
        with blas_threads():
            W = np.asarray((Piu @ Pui).toarray(), dtype=np.float32)
        progress(0.7)
        W *= scale[None, :]
        np.fill_diagonal(W, 0.0)
        self._W = W if p["K"] is None else _keep_top_k(W, p["K"])


def _rp3_walk(
    X: sp.csr_matrix, alpha: float, beta: float
) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """RP3beta's two transition matrices (each entry ^alpha) and the target scaling
    ``pop^-beta``: ``W = diag-free(Piu @ Pui) * scale``."""
    X = sp.csr_matrix(X, dtype=np.float32)
    users = np.maximum(np.diff(X.indptr), 1).astype(np.float32)
    pop = np.maximum(np.asarray(X.sum(axis=0)).ravel(), 1).astype(np.float32)
    Pui = (sp.diags(1.0 / users) @ X).tocsr()
    Piu = (sp.diags(1.0 / pop) @ X.T.tocsr()).tocsr()
    Pui.data **= alpha
    Piu.data **= alpha
    return Piu, Pui, (pop**-beta).astype(np.float32)


def rp3_query_scores(
    X: sp.csr_matrix, queries: sp.csr_matrix, *, alpha: float, beta: float
) -> np.ndarray:
    """``queries @ W`` of the unpruned RP3beta fitted on ``X`` without forming the
    items x items ``W`` (O(queries x users x items)): model selection's fast path."""
    Piu, Pui, scale = _rp3_walk(X, alpha, beta)
    Q = sp.csr_matrix(queries, dtype=np.float32)
    with blas_threads():
        out = np.asarray((Q @ Piu).toarray(), dtype=np.float32) @ Pui
    out = np.asarray(out, dtype=np.float32) * scale[None, :]
    # W's diagonal is zero: remove each query item's own two-step return
    diag = np.asarray(Piu.multiply(Pui.T).sum(axis=1)).ravel().astype(np.float32) * scale
    rows, cols = Q.nonzero()
    out[rows, cols] -= np.asarray(Q[rows, cols]).ravel() * diag[cols]
    return out


def _keep_top_k(W: np.ndarray, k: int) -> sp.csr_matrix:
    """CSR with the k largest entries of each row of dense W (non-negative weights)."""
    k = min(k, W.shape[1])
    idx = np.argpartition(-W, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(W, idx, axis=1)
    rows = np.repeat(np.arange(W.shape[0]), k)
    out = sp.csr_matrix((vals.ravel(), (rows, idx.ravel())), shape=W.shape, dtype=np.float32)
    out.eliminate_zeros()
    return out
