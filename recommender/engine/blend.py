"""A weighted sum of item-item models, collapsed into one item-item weight matrix.

``W = sum_k weight_k * W_k / scale_k``, where ``scale_k`` (:func:`score_scale`) puts each
part's scores on a common footing (the mean spread of a user's scores), so the weights say how
much each part counts whatever its units (EASE's regression weights, RP3beta's walk
probabilities). Serving is unchanged: the sum is one dense ``W`` with the same top-K table and
weights file as any neighbour model.

``recency`` > 0 scores each history item with ``1 + recency * exp(-pos / recency_tau)``
(``pos`` 0 = the user's latest) as ``session_ease`` does; the serving layer reads the same two
parameters. A one-part blend is how model selection serves a single model with a recency
weight.

Parts are given as ``{"model": name, "params": {...}, "weight": w}`` with the full
constructor parameters, so a version's ``params`` rebuild exactly what was fitted.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from .base import ItemItemRecommender, Progress, Recommender
from .ease import EASE, WeightedEDLAE
from .knn import ItemKNN, RP3Beta
from .lowrank import EASELowRank
from .temporal import SessionEASE, recency_history

__all__ = ["Blend", "score_scale", "PART_MODELS"]

#: the item-item models a blend can hold
PART_MODELS: dict[str, type[ItemItemRecommender]] = {
    cls.name: cls for cls in (EASE, EASELowRank, WeightedEDLAE, SessionEASE, RP3Beta, ItemKNN)
}

_SCALE_ROWS = 256


def score_scale(scores: np.ndarray) -> float:
    """The mean over rows of each row's standard deviation (1.0 for an all-flat block)."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.where(np.isfinite(scores), scores, 0.0)
    spread = float(np.mean(np.std(finite, axis=1))) if len(finite) else 0.0
    return spread if spread > 0 else 1.0


def _scale_rows(X: sp.csr_matrix) -> sp.csr_matrix:
    """Up to 256 evenly spaced users with a history: where a part's scale is read."""
    rows = np.flatnonzero(np.diff(X.indptr) > 0)
    if len(rows) > _SCALE_ROWS:
        rows = rows[np.linspace(0, len(rows) - 1, _SCALE_ROWS).astype(int)]
    return X[rows]


class Blend(ItemItemRecommender):
    """See the module docstring."""

    name = "blend"
    uses_timestamps: ClassVar[bool] = True

    def __init__(
        self,
        parts: list[dict[str, Any]] | tuple = (),
        recency: float = 0.0,
        recency_tau: float = 10.0,
    ) -> None:
        parts = [dict(p) for p in parts]
        if not parts:
            raise ValueError("a blend needs at least one part")
        for p in parts:
            if p.get("model") not in PART_MODELS:
                raise ValueError(
                    f"blend part must be one of {', '.join(PART_MODELS)}, got {p.get('model')!r}"
                )
            PART_MODELS[p["model"]](**p.get("params", {}))  # unknown parameters: TypeError
            p["weight"] = float(p.get("weight", 1.0))
            p["params"] = dict(p.get("params", {}))
        self._params: dict[str, Any] = dict(
            parts=parts, recency=float(recency), recency_tau=float(recency_tau)
        )
        self._T: sp.csr_matrix | None = None
        self.scales: list[float] = []

    def fit(
        self,
        X: sp.csr_matrix,
        progress: Progress | None = None,
        timestamps: sp.csr_matrix | None = None,
    ) -> Self:
        """``timestamps`` (CSR, seconds, the sparsity of ``X``) reach the parts that use them."""
        self._T = timestamps
        try:
            return super().fit(X, progress)
        finally:
            self._T = None

    def _fit(self, X: sp.csr_matrix, progress: Progress) -> None:
        parts = self._params["parts"]
        sample = _scale_rows(X)
        W: np.ndarray | None = None
        self.scales = []
        for k, p in enumerate(parts):
            model: Recommender = PART_MODELS[p["model"]](**p["params"])
            step = partial(_part_progress, progress, k, len(parts))
            if model.uses_timestamps and self._T is not None:
                model.fit(X, progress=step, timestamps=self._T)  # type: ignore[call-arg]
            else:
                model.fit(X, progress=step)
            Wk = model.weights  # type: ignore[attr-defined]
            if len(parts) == 1:  # one part: its own scale (a ranking ignores a factor)
                self.scales.append(1.0)
                W = Wk.toarray() if sp.issparse(Wk) else Wk
                continue
            scale = score_scale(_check_dense(sample @ Wk))
            self.scales.append(scale)
            factor = np.float32(p["weight"] / scale)
            if W is None:
                W = (Wk.toarray() if sp.issparse(Wk) else np.asarray(Wk)) * factor
            elif sp.issparse(Wk):
                coo = Wk.tocoo()
                np.add.at(W, (coo.row, coo.col), coo.data * factor)
            else:
                W += np.asarray(Wk) * factor
            del model, Wk
        assert W is not None
        W = np.asarray(W, dtype=np.float32)
        np.fill_diagonal(W, 0.0)
        self._W = W

    def score_users(
        self, X_rows: sp.csr_matrix, timestamps_rows: sp.csr_matrix | None = None
    ) -> np.ndarray:
        p = self._params
        if timestamps_rows is not None and p["recency"]:
            X_rows = recency_history(X_rows, timestamps_rows, p["recency"], p["recency_tau"])
        return super().score_users(X_rows)


def _part_progress(progress: Progress, k: int, n: int, fraction: float) -> None:
    progress((k + fraction) / n * 0.95)


def _check_dense(block: np.ndarray | sp.spmatrix) -> np.ndarray:
    return block.toarray() if sp.issparse(block) else np.asarray(block)
