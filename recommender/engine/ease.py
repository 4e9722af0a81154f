"""Closed-form linear item-item autoencoders: EASE (Steck 2019) and its regularised variants.

One solver serves all of them. With ``Xw = diag(n_u^(-user_exponent/2)) X`` (users with long
histories weigh less in the Gram matrix), ``G = Xw' Xw`` and a per-item L2 penalty

    Lambda = lam + dropout / (1 - dropout) * diag(G)        (EDLAE, Steck 2020),

the zero-diagonal least-squares solution is ``B = I - P diag(1 / diag(P))`` with
``P = (G + Lambda)^-1``. ``dropout = 0`` and ``user_exponent = 0`` give plain EASE.

``P`` is computed in float32 by whichever side is smaller:

- primal (items <= users): Cholesky of the dense items x items matrix (``?potrf``/``?potri``),
  O(items^3);
- dual (users < items), Woodbury: ``P = L^-1 - L^-1 Xw' (I + Xw L^-1 Xw')^-1 Xw L^-1`` with
  ``L = Lambda``; costs O(users^2 items + users items^2) - on ml-latest-small (610 users,
  9k items) about 1.5 s instead of ~75 s for a float64 ``np.linalg.inv``.

Memory is dominated by the dense items x items P/B: 4 * items^2 bytes (0.32 GB at 9k items,
1.6 GB at 20k), hence ``max_items``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ._threads import blas_threads
from .base import CatalogTooLargeError, ItemItemRecommender, Progress, _prune_rows

__all__ = ["EASE", "ease_weights", "WeightedEDLAE"]

_RESTRICTED_DEFAULT_K = 1000


def ease_weights(
    X: sp.csr_matrix,
    *,
    lam: float,
    dropout: float = 0.0,
    user_exponent: float = 0.0,
    solver: Literal["auto", "primal", "dual"] = "auto",
    progress: Progress | None = None,
) -> np.ndarray:
    """Dense float32 ``B`` (items x items, zero diagonal) of the EASE family, see module doc."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if lam < 0 or (lam == 0 and dropout == 0):
        raise ValueError(f"lam must be > 0 (or >= 0 with dropout > 0), got {lam}")
    n_users, n_items = X.shape
    X = sp.csr_matrix(X, dtype=np.float32)
    if user_exponent:
        n_u = np.maximum(np.diff(X.indptr), 1).astype(np.float64)
        X = (sp.diags((n_u ** (-user_exponent / 2.0)).astype(np.float32)) @ X).tocsr()
    diag_g = np.asarray(X.multiply(X).sum(axis=0), dtype=np.float64).ravel()
    lam_vec = lam + (dropout / (1.0 - dropout)) * diag_g
    lam_vec = np.maximum(lam_vec, 1e-6)  # an item nobody has, with lam == 0
    if solver == "auto":
        solver = "dual" if n_users < n_items else "primal"
    with blas_threads():
        if solver == "dual":
            Xd = X.toarray()
            XL = Xd / lam_vec.astype(np.float32)[None, :]
            K = XL @ Xd.T
            K[np.diag_indices_from(K)] += 1.0
            if progress:
                progress(0.2)
            KiXL = scipy.linalg.solve(K, XL, assume_a="pos", overwrite_a=True)
            if progress:
                progress(0.4)
            P = XL.T @ KiXL
            del KiXL, XL, Xd
            P *= -1.0
            P[np.diag_indices(n_items)] += (1.0 / lam_vec).astype(np.float32)
        elif solver == "primal":
            G = (X.T @ X).toarray().astype(np.float32)
            G[np.diag_indices(n_items)] += lam_vec.astype(np.float32)
            if progress:
                progress(0.2)
            P = _spd_inverse(G)
        else:
            raise ValueError(f"solver must be auto, primal or dual, got {solver!r}")
    if progress:
        progress(0.8)
    d = np.diag(P).copy()
    P /= -d[None, :]
    np.fill_diagonal(P, 0.0)
    return P


def _spd_inverse(A: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite float32 matrix, in place (Cholesky)."""
    potrf, potri = scipy.linalg.lapack.get_lapack_funcs(("potrf", "potri"), (A,))
    c, info = potrf(A, lower=True, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky failed (info={info}); increase lam")
    inv, info = potri(c, lower=True, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverse from Cholesky failed (info={info})")
    # potri fills the lower triangle only: mirror it, a block of rows at a time (an index of
    # the upper triangle would take 16 bytes per entry: 750 MB at 10k items)
    n = inv.shape[0]
    step = 1024
    for i in range(0, n, step):
        j = min(i + step, n)
        block = inv[i:j, i:j]
        block[np.triu_indices(j - i, k=1)] = block.T[np.triu_indices(j - i, k=1)]
        inv[i:j, j:] = inv[j:, i:j].T
    # LAPACK hands back a Fortran-ordered array; the inverse is symmetric, so its transpose is
    # the same matrix in C order, whose rows (what serving reads) are contiguous
    return inv.T


class EASE(ItemItemRecommender):
    """EASE (Steck 2019): dense closed form, exactly as published (uniform ``lam``).

    Refuses catalogs above ``max_items`` with :class:`CatalogTooLargeError` (dense
    items x items memory and O(items^3) time)."""

    name = "ease"

    def __init__(self, lam: float = 300.0, max_items: int = 20_000) -> None:
        self._params: dict[str, Any] = dict(lam=lam, max_items=max_items)

    def _fit(self, X: sp.csr_matrix, progress: Progress) -> None:
        n_items = X.shape[1]
        if n_items > self._params["max_items"]:
            raise CatalogTooLargeError(
                f"EASE needs a dense {n_items} x {n_items} matrix "
                f"({4 * n_items**2 / 1e9:.1f} GB in float32, O(items^3) time): {n_items} items "
                f"exceed max_items={self._params['max_items']}. Use the default model "
                f"(restricts itself to the most popular items) or raise max_items."
            )
        self._W = ease_weights(X, lam=self._params["lam"], progress=progress)


class WeightedEDLAE(ItemItemRecommender):
    """The project's default: EASE-family with a user-weighted Gram matrix and EDLAE's
    dropout penalty, served from a pruned neighbour table.

    - ``user_exponent``: users weigh ``n_u^-user_exponent`` in the Gram matrix, so a few
      users with thousands of interactions do not dominate item-item co-occurrence.
    - ``dropout``: EDLAE penalty ``dropout/(1-dropout) * diag(G)`` on top of ``lam`` (more
      shrinkage for popular items, whose self-reconstruction EASE otherwise overfits).
    - ``neighbours``: if set, ``W`` keeps the ``neighbours`` largest-|weight| entries of each
      row and *the model scores with that sparse W*, so what is evaluated is what the SQL
      neighbour table serves. ``None`` keeps the dense matrix.
    - ``max_items``: with a larger catalog the model is fitted on the ``max_items`` most
      popular items only (fit time O(max_items^3), memory 4 * max_items^2 bytes); the others
      can still be in a history (they just add nothing) but are never recommended by this
      model (score ``-inf``): the serving layer falls back to popularity/semantic retrieval
      for them. A restricted model keeps at most 1000 neighbours per item (sparse ``W``).
    """

    name = "wedlae"

    def __init__(
        self,
        lam: float = 20.0,
        dropout: float = 0.1,
        user_exponent: float = 0.5,
        neighbours: int | None = None,
        max_items: int = 10_000,
    ) -> None:
        self._params: dict[str, Any] = dict(
            lam=lam,
            dropout=dropout,
            user_exponent=user_exponent,
            neighbours=neighbours,
            max_items=max_items,
        )

    def _fit(self, X: sp.csr_matrix, progress: Progress) -> None:
        p = self._params
        n_items = X.shape[1]
        self._unscorable = None
        head: np.ndarray | None = None
        if n_items > p["max_items"]:
            pop = np.asarray(X.getnnz(axis=0))
            head = np.sort(np.argsort(-pop, kind="stable")[: p["max_items"]])
            X = X[:, head].tocsr()
        B = ease_weights(
            X,
            lam=p["lam"],
            dropout=p["dropout"],
            user_exponent=p["user_exponent"],
            progress=lambda f: progress(0.9 * f),
        )
        if p["neighbours"] is None and head is None:
            self._W = B
            return
        # a restricted (large) catalog is always stored sparse: at most 1000 per row
        k = p["neighbours"] or min(B.shape[1], _RESTRICTED_DEFAULT_K)
        table = _prune_rows(B, k)
        del B
        rows, cols = table.item, table.neighbour
        if head is not None:
            rows, cols = head[rows], head[cols]
        self._W = sp.csr_matrix(
            (table.weight, (rows, cols)), shape=(n_items, n_items), dtype=np.float32
        )
        self._unscorable = None
        if head is not None:
            mask = np.ones(n_items, dtype=bool)
            mask[head] = False
            self._unscorable = mask

    _unscorable: np.ndarray | None = None

    def score_users(self, X_rows: sp.csr_matrix) -> np.ndarray:
        out = super().score_users(X_rows)
        if self._unscorable is not None:
            out[:, self._unscorable] = -np.inf
        return out
