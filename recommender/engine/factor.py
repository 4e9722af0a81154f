"""Matrix-factorisation models from ``implicit``: ALS (iALS) and BPR, CPU implementations.

Both fold in new users from their history (no user state is needed at serving time):
``user_vector(history) @ item_factors.T`` are the scores, so pgvector can serve them.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ._implicit import implicit_modules, implicit_threads
from ._threads import blas_threads, max_threads, threads_for
from .base import Contribution, FactorRecommender, Progress, history_matrix

__all__ = ["ALS", "BPR"]


class ALS(FactorRecommender):
    """implicit's AlternatingLeastSquares (Hu, Koren, Volinsky 2008).

    ``weighting="bm25"`` turns the binary input into BM25 confidences (per item IDF over
    users, per user length normalisation, as ``implicit.nearest_neighbours.bm25_weight`` on
    the users x items matrix); the same weighting is applied to a history at fold-in, from
    statistics frozen at fit time. ``alpha`` scales confidences (implicit's own ``alpha``).
    """

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 1.0,
        iterations: int = 20,
        weighting: Literal["none", "bm25"] = "none",
        bm25_k1: float = 100.0,
        bm25_b: float = 0.8,
        random_state: int | None = 0,
    ) -> None:
        if weighting not in ("none", "bm25"):
            raise ValueError(f"weighting must be 'none' or 'bm25', got {weighting!r}")
        self._params: dict[str, Any] = dict(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            weighting=weighting,
            bm25_k1=bm25_k1,
            bm25_b=bm25_b,
            random_state=random_state,
        )
        self._model: Any = None
        self._idf: np.ndarray | None = None
        self._avg_len = 1.0

    # -- weighting
    def _weigh(self, X_rows: sp.csr_matrix) -> sp.csr_matrix:
        X_rows = sp.csr_matrix(X_rows, dtype=np.float32)
        if self._params["weighting"] == "none":
            return X_rows
        assert self._idf is not None
        k1, b = self._params["bm25_k1"], self._params["bm25_b"]
        lengths = np.diff(X_rows.indptr).astype(np.float32)
        norm = (1.0 - b) + b * lengths / self._avg_len
        out = X_rows.copy()
        row_norm = np.repeat(norm, np.diff(X_rows.indptr))
        out.data = (
            out.data * (k1 + 1.0) / (k1 * row_norm + out.data) * self._idf[out.indices]
        ).astype(np.float32)
        return out

    def _fit(self, X: sp.csr_matrix, progress: Progress) -> None:
        p = self._params
        if p["weighting"] == "bm25":
            counts = np.bincount(X.indices, minlength=X.shape[1]).astype(np.float64)
            self._idf = (np.log(X.shape[0]) - np.log1p(counts)).astype(np.float32)
            self._avg_len = float(np.diff(X.indptr).mean())
        Xw = self._weigh(X)
        als = implicit_modules()["als"]
        iterations = int(p["iterations"])

        def callback(iteration: int, _elapsed: float, _loss: Any) -> None:
            progress((iteration + 1) / max(1, iterations) * 0.99)

        with implicit_threads():
            self._model = als.AlternatingLeastSquares(
                factors=p["factors"],
                regularization=p["regularization"],
                alpha=p["alpha"],
                iterations=iterations,
                random_state=p["random_state"],
                num_threads=max_threads(),
            )
            self._model.fit(Xw, show_progress=False, callback=callback)
        self._item_factors = np.ascontiguousarray(self._model.item_factors, dtype=np.float32)
        self._model.user_factors = None  # fold-in only: no per-user state is kept

    def user_vectors(self, X_rows: sp.csr_matrix) -> np.ndarray:
        self._require_fitted()
        Xw = self._weigh(X_rows)
        with implicit_threads():
            self._model.num_threads = threads_for(Xw.shape[0])
            U = self._model.recalculate_user(np.arange(Xw.shape[0]), Xw)
        return np.asarray(U, dtype=np.float32).reshape(Xw.shape[0], -1)

    def explain(self, history: np.ndarray, item: int, top: int = 5) -> list[Contribution]:
        """implicit's ``explain`` (Hu et al. section 5): the contributions sum to the score."""
        self._require_fitted()
        Xw = self._weigh(history_matrix(np.asarray(history), self.n_items))
        if Xw.nnz == 0:
            return []
        # implicit's explain builds the user's weighted Gram matrix with one np.outer per
        # history item in Python; build it vectorised and hand it the Cholesky factor
        # (its documented ``user_weights`` argument) - same numbers, ~50x faster.
        p = self._params
        conf = Xw.data.astype(np.float64) * p["alpha"]
        V = self._model.item_factors[Xw.indices].astype(np.float64)
        with implicit_threads():  # BLAS single-threaded: tiny products, see threads_for
            A = self._model.YtY + p["regularization"] * np.eye(V.shape[1])
            A += (V * (conf - 1.0)[:, None]).T @ V
            user_weights = scipy.linalg.cho_factor(A)
            _total, contributions, _ = self._model.explain(
                0, Xw, int(item), user_weights=user_weights, N=max(1, top)
            )
        out = [Contribution(int(i), float(s)) for i, s in contributions if int(i) != item]
        return out[: max(0, top)]


class BPR(FactorRecommender):
    """implicit's Bayesian Personalised Ranking (CPU, SGD).

    BPR learns no closed-form user update, so new users are folded in by a confidence-
    weighted least-squares fit on the learned item factors (the iALS user step):
    ``u = (V'V + fold_in_alpha * V_H'V_H + fold_in_reg * I)^-1 (1 + fold_in_alpha) V_H'1``
    where ``V`` excludes BPR's item-bias column. ``user_vector`` returns ``[u, 1]`` so that
    ``user_vector @ item_factors[i] = u . v_i + bias_i`` (implicit's layout).
    """

    name = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        fold_in_alpha: float = 10.0,
        fold_in_reg: float = 1.0,
        random_state: int | None = 0,
    ) -> None:
        self._params = dict(
            factors=factors,
            learning_rate=learning_rate,
            regularization=regularization,
            iterations=iterations,
            fold_in_alpha=fold_in_alpha,
            fold_in_reg=fold_in_reg,
            random_state=random_state,
        )
        self._VtV: np.ndarray | None = None

    def _fit(self, X: sp.csr_matrix, progress: Progress) -> None:
        p = self._params
        bpr = implicit_modules()["bpr"]
        iterations = int(p["iterations"])

        def callback(iteration: int, *_: Any) -> None:
            progress((iteration + 1) / max(1, iterations) * 0.99)

        with implicit_threads():
            model = bpr.BayesianPersonalizedRanking(
                factors=p["factors"],
                learning_rate=p["learning_rate"],
                regularization=p["regularization"],
                iterations=iterations,
                num_threads=max_threads(),
                random_state=p["random_state"],
            )
            model.fit(X, show_progress=False, callback=callback)
        self._item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        V = self._item_factors[:, :-1].astype(np.float64)
        self._VtV = V.T @ V

    def _system(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self._VtV is not None
        a, reg = self._params["fold_in_alpha"], self._params["fold_in_reg"]
        VH = self._item_factors[history, :-1].astype(np.float64)  # type: ignore[index]
        A = self._VtV + a * VH.T @ VH + reg * np.eye(self._VtV.shape[0])
        return A, VH

    def user_vectors(self, X_rows: sp.csr_matrix) -> np.ndarray:
        self._require_fitted()
        X_rows = sp.csr_matrix(X_rows)
        a = self._params["fold_in_alpha"]
        out = np.ones((X_rows.shape[0], self.item_factors.shape[1]), dtype=np.float32)
        with blas_threads(1):  # many tiny solves: threads only add wake-up latency
            for r in range(X_rows.shape[0]):
                h = X_rows.indices[X_rows.indptr[r] : X_rows.indptr[r + 1]]
                A, VH = self._system(h)
                out[r, :-1] = scipy.linalg.solve(A, (1 + a) * VH.sum(axis=0), assume_a="pos")
        return out

    def explain(self, history: np.ndarray, item: int, top: int = 5) -> list[Contribution]:
        """Exact split of ``score - bias_item`` over the history items (fold-in is linear)."""
        self._require_fitted()
        h = np.unique(np.asarray(history, dtype=np.int64))
        if len(h) == 0:
            return []
        A, VH = self._system(h)
        a = self._params["fold_in_alpha"]
        with blas_threads(1):
            w = scipy.linalg.solve(
                A, self.item_factors[item, :-1].astype(np.float64), assume_a="pos"
            )
        contrib = (1 + a) * (VH @ w)
        keep = h != item
        h, contrib = h[keep], contrib[keep]
        order = np.lexsort((h, -contrib))[: max(0, top)]
        return [Contribution(int(h[j]), float(contrib[j])) for j in order]
