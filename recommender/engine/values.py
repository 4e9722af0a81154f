"""Value weights: how much each interaction counts in a model's input.

A site's interactions may carry a value (a rating, a play count) or none (a like). The models
learn from positives (every interaction counts), but where the values say something about the
user's taste an interaction with a higher value can count more: ``log1p`` weighs a valued
interaction ``log(1 + v)`` divided by the mean of that over the user's valued interactions
(so each user's weights average 1 and a penalty ``lam`` keeps its scale), and an interaction
without a value (NaN) 1. The same weights are the model's training rows and the history it
scores, so the selection, a refit and serving all call these functions.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["VALUE_WEIGHTS", "has_value_signal", "row_value_weights", "value_weights"]

#: the weightings a model version may record as its ``value_weight`` parameter
VALUE_WEIGHTS: tuple[str, ...] = ("log1p",)
# a valued interaction never weighs less than this (a value of 0 still counts a little)
MIN_WEIGHT = 1e-3


def _check(kind: str) -> None:
    if kind not in VALUE_WEIGHTS:
        raise ValueError(f"value_weight must be one of {', '.join(VALUE_WEIGHTS)}, got {kind!r}")


def row_value_weights(values: np.ndarray, kind: str = "log1p") -> np.ndarray:
    """One user's weights (float32) for their interactions' ``values`` (NaN: no value)."""
    _check(kind)
    v = np.asarray(values, dtype=np.float64)
    out = np.ones(len(v), dtype=np.float64)
    valued = np.isfinite(v)
    if valued.any():
        raw = np.maximum(np.log1p(np.maximum(v[valued], 0.0)), MIN_WEIGHT)
        out[valued] = raw / raw.mean()
    return out.astype(np.float32)


def value_weights(values: sp.csr_matrix, kind: str = "log1p") -> sp.csr_matrix:
    """``values`` (users x items, NaN where an interaction has no value) as weights, row by
    row as :func:`row_value_weights` (same sparsity, float32)."""
    _check(kind)
    V = sp.csr_matrix(values, dtype=np.float64, copy=True)
    valued = np.isfinite(V.data)
    raw = np.where(
        valued, np.maximum(np.log1p(np.maximum(np.nan_to_num(V.data), 0.0)), MIN_WEIGHT), 0.0
    )
    rows = np.repeat(np.arange(V.shape[0]), np.diff(V.indptr))
    total = np.bincount(rows, weights=raw, minlength=V.shape[0])
    count = np.bincount(rows, weights=valued, minlength=V.shape[0])
    mean = total / np.maximum(count, 1.0)
    data = np.where(valued, raw / np.where(mean > 0, mean, 1.0)[rows], 1.0)
    return sp.csr_matrix(
        (data.astype(np.float32), V.indices.copy(), V.indptr.copy()), shape=V.shape
    )


def has_value_signal(values: sp.csr_matrix | None, kind: str = "log1p") -> bool:
    """Whether weighting by ``values`` changes anything: some user's weights differ (likes
    only, or every user's values equal, give all weights 1)."""
    if values is None or values.nnz == 0:
        return False
    W = value_weights(values, kind)
    return bool(np.any(np.abs(W.data - 1.0) > 1e-4))
