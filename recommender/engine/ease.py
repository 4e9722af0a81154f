"""Closed-form linear item-item autoencoders: EASE (Steck 2019) and its regularised variants.

One solver serves all of them. With ``Xw = diag(n_u^(-user_exponent/2)) X`` (users with long
histories weigh less in the Gram matrix), ``G = Xw' Xw`` and a per-item L2 penalty

    Lambda = lam + dropout / (1 - dropout) * diag(G)        (EDLAE, Steck 2020),

the zero-diagonal least-squares solution is ``B = I - P diag(1 / diag(P))`` with
``P = (G + Lambda)^-1``. ``dropout = 0`` and ``user_exponent = 0`` give plain EASE.

``pop_exponent = e`` scales the ``lam`` part per item by ``(diag(G)_i / mean diag(G))^e``:
popular items get more shrinkage and rare ones less, with a gentler slope than EDLAE's linear
term. It is EASE on the column-weighted input ``X diag(pop^(-e/2))`` with its scores weighted
back; on sparse catalogs (few co-occurrences per item) ``e = .5`` beats any uniform ``lam`` by
about 1 % (docs/MODELS.md), so the selection tries it as a family of its own.

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

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ._threads import blas_threads
from .base import CatalogTooLargeError, ItemItemRecommender, Progress, prune_rows

__all__ = [
    "EASE",
    "HeadRestricted",
    "ease_weights",
    "popular_head",
    "spd_inverse",
    "WeightedEDLAE",
    "edlae_penalty",
    "edlae_query_scorer",
    "edlae_query_scores",
    "sparse_dual_ease",
    "user_weighted",
]

_RESTRICTED_DEFAULT_K = 1000


def popular_head(X: sp.csr_matrix, max_items: int) -> np.ndarray | None:
    """The columns of the ``max_items`` most popular items of ``X`` (sorted; ties to the lower
    index), or None when the catalog has no more than that."""
    if X.shape[1] <= max_items:
        return None
    pop = np.asarray(X.getnnz(axis=0))
    return np.sort(np.argsort(-pop, kind="stable")[:max_items])


class HeadRestricted(ItemItemRecommender):
    """An item-item model that a catalog above its ``max_items`` fits on the popular head only
    (:func:`popular_head`): fit time O(max_items^3), memory 4 * max_items^2 bytes. The other
    items can be in a history (they add nothing) but this model never recommends them (score
    ``-inf``); serving falls back to popularity/semantic retrieval for them. A restricted model
    keeps at most 1000 neighbours per item (a sparse ``W``)."""

    _unscorable: np.ndarray | None = None

    def _store(
        self, B: np.ndarray, head: np.ndarray | None, n_items: int, neighbours: int | None
    ) -> None:
        """Keep ``B`` (the head's, or the whole catalog's) as ``W``: dense when whole and
        unpruned, else the ``neighbours`` (at most 1000 for a head) largest per row."""
        self._unscorable = None
        if neighbours is None and head is None:
            self._W = B
            return
        k = neighbours or min(B.shape[1], _RESTRICTED_DEFAULT_K)
        table = prune_rows(B, k)
        del B
        rows, cols = table.item, table.neighbour
        if head is not None:
            rows, cols = head[rows], head[cols]
            mask = np.ones(n_items, dtype=bool)
            mask[head] = False
            self._unscorable = mask
        self._W = sp.csr_matrix(
            (table.weight, (rows, cols)), shape=(n_items, n_items), dtype=np.float32
        )

    def score_users(self, X_rows: sp.csr_matrix) -> np.ndarray:
        out = super().score_users(X_rows)
        if self._unscorable is not None:
            out[:, self._unscorable] = -np.inf
        return out


def ease_weights(
    X: sp.csr_matrix,
    *,
    lam: float,
    dropout: float = 0.0,
    user_exponent: float = 0.0,
    pop_exponent: float = 0.0,
    solver: Literal["auto", "primal", "dual"] = "auto",
    progress: Progress | None = None,
) -> np.ndarray:
    """Dense float32 ``B`` (items x items, zero diagonal) of the EASE family, see module doc."""
    n_users, n_items = X.shape
    X = user_weighted(X, user_exponent)
    lam_vec = edlae_penalty(X, lam, dropout, pop_exponent)
    if solver == "auto":
        solver = "dual" if n_users < n_items else "primal"
    if solver not in ("primal", "dual"):
        raise ValueError(f"solver must be auto, primal or dual, got {solver!r}")
    if progress:
        progress(0.2)
    P = _edlae_from_design(X, lam_vec, solver)
    if progress:
        progress(0.8)
    return P


def user_weighted(X: sp.csr_matrix, user_exponent: float) -> sp.csr_matrix:
    """``diag(n_u^(-user_exponent/2)) X``: the rows of the Gram matrix's design."""
    X = sp.csr_matrix(X, dtype=np.float32)
    if not user_exponent:
        return X
    n_u = np.maximum(np.diff(X.indptr), 1).astype(np.float64)
    return (sp.diags((n_u ** (-user_exponent / 2.0)).astype(np.float32)) @ X).tocsr()


def edlae_penalty(
    Z: sp.csr_matrix, lam: float, dropout: float, pop_exponent: float = 0.0
) -> np.ndarray:
    """Per-item L2 penalty ``lam * s_i + dropout/(1-dropout) * diag(Z'Z)`` (float64), with
    ``s_i = (diag(Z'Z)_i / mean)^pop_exponent`` (1 for every item when ``pop_exponent`` is 0;
    an item nobody has takes the smallest positive diagonal, so its penalty stays finite)."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if lam < 0 or (lam == 0 and dropout == 0):
        raise ValueError(f"lam must be > 0 (or >= 0 with dropout > 0), got {lam}")
    if pop_exponent < 0:
        raise ValueError(f"pop_exponent must be >= 0, got {pop_exponent}")
    diag_g = np.asarray(Z.multiply(Z).sum(axis=0), dtype=np.float64).ravel()
    scale: float | np.ndarray = 1.0
    if pop_exponent and np.any(diag_g > 0):
        positive = diag_g[diag_g > 0]
        scale = (np.maximum(diag_g, positive.min()) / positive.mean()) ** pop_exponent
    return np.maximum(lam * scale + dropout / (1.0 - dropout) * diag_g, 1e-6)


def _dual_factors(
    Z: sp.csr_matrix, lam_vec: np.ndarray
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Woodbury pieces of ``P = (Z'Z + L)^-1 = L^-1 - (Z L^-1)' M``: ``Z L^-1`` (sparse),
    ``M = (I + Z L^-1 Z')^-1 Z L^-1`` (dense rows x items) and ``diag(P)``."""
    XL = (Z @ sp.diags((1.0 / lam_vec).astype(np.float32))).tocsr()
    with blas_threads():
        K = np.asarray((XL @ Z.T).toarray(), dtype=np.float32)
        K[np.diag_indices_from(K)] += 1.0
        Ki = spd_inverse(K)
        XLt = XL.T.tocsr()
        M = np.ascontiguousarray(np.asarray(XLt @ Ki).T)  # rows x items = K^-1 (Z L^-1)
    diag_p = (1.0 / lam_vec) - np.asarray(XL.multiply(M).sum(axis=0), dtype=np.float64).ravel()
    return XL, M, diag_p


def _edlae_from_design(Z: sp.csr_matrix, lam_vec: np.ndarray, solver: str) -> np.ndarray:
    """Dense float32 ``B = I - P diag(1/diag(P))`` for ``P = (Z'Z + diag(lam_vec))^-1``."""
    n_items = Z.shape[1]
    if solver == "primal":
        with blas_threads():
            P = np.asarray((Z.T @ Z).toarray(), dtype=np.float32)
            P[np.diag_indices(n_items)] += lam_vec.astype(np.float32)
            P = spd_inverse(P)
    else:
        XL, M, _ = _dual_factors(Z, lam_vec)
        with blas_threads():
            P = np.asarray(XL.T.tocsr() @ M, dtype=np.float32)
        del M
        P *= -1.0
        P[np.diag_indices(n_items)] += (1.0 / lam_vec).astype(np.float32)
    d = np.diag(P).copy()
    P /= -d[None, :]
    np.fill_diagonal(P, 0.0)
    return P


def sparse_dual_ease(
    Z: sp.csr_matrix, lam: float, dropout: float, method: str = "auto"
) -> np.ndarray:
    """Dense float32 EDLAE ``B`` for ``G = Z'Z``, from ``P = (G + L)^-1``.

    With fewer rows than items (few users, a large catalog) by Woodbury, using the sparsity of
    ``Z``: ``P = L^-1 - (Z L^-1)' (I + Z L^-1 Z')^-1 (Z L^-1)``, a rows x rows inverse (on
    ml-latest-small, 7,013 rows with the windows for 9,724 items: 6-7 s on two idle cores, as
    fast as the primal, and twice as fast when the cores are shared, where multi-threaded LAPACK
    on the larger matrix suffers most). With more rows than items (many users and their
    windows) the items x items ``G + L`` is inverted directly: the dual would need a dense
    rows x rows matrix (80k rows: 25 GB). ``method``: "auto" (the smaller side), "primal" or
    "dual"."""
    if method not in ("auto", "primal", "dual"):
        raise ValueError(f"method must be auto, primal or dual, got {method!r}")
    Z = sp.csr_matrix(Z, dtype=np.float32)
    lam_vec = edlae_penalty(Z, lam, dropout)
    if method == "auto":
        method = "primal" if Z.shape[0] >= Z.shape[1] else "dual"
    return _edlae_from_design(Z, lam_vec, method)


def edlae_query_scorer(
    Z: sp.csr_matrix,
    *,
    lam: float,
    dropout: float = 0.0,
    pop_exponent: float = 0.0,
) -> Callable[[sp.csr_matrix], np.ndarray]:
    """A function of query rows giving ``queries @ B`` for the EDLAE ``B`` of design ``Z`` (as
    :func:`ease_weights` would build it). With fewer rows than items it never forms the
    items x items ``B``: the Woodbury pieces, computed once here, give ``queries @ P`` in
    O(queries x rows x items) per call, so a catalog far above the dense ceiling can still be
    scored where its users are fewer than that ceiling."""
    Z = sp.csr_matrix(Z, dtype=np.float32)
    lam_vec = edlae_penalty(Z, lam, dropout, pop_exponent)
    if Z.shape[0] >= Z.shape[1]:
        B = _edlae_from_design(Z, lam_vec, "primal")

        def primal(queries: sp.csr_matrix) -> np.ndarray:
            Q = sp.csr_matrix(queries, dtype=np.float32)
            with blas_threads():
                return np.asarray(Q @ B, dtype=np.float32)

        return primal
    XL, M, diag_p = _dual_factors(Z, lam_vec)
    inv_diag = (1.0 / diag_p).astype(np.float32)
    # Q @ B = Q - (Q @ P) diag(1/diag(P)) with Q @ P = Q L^-1 - (Q (Z L^-1)') M: the dense part
    # is (Q (Z L^-1)') M / diag(P), and Q's own entries are scaled by 1 - 1/(lam diag(P))
    own = (1.0 - 1.0 / (lam_vec * diag_p)).astype(np.float32)

    def dual(queries: sp.csr_matrix) -> np.ndarray:
        Q = sp.csr_matrix(queries, dtype=np.float32)
        if not Q.has_canonical_format:  # summed on a copy: the caller's arrays stay as given
            Q = Q.copy()
            Q.sum_duplicates()
        with blas_threads():
            out = np.asarray((Q @ XL.T).toarray(), dtype=np.float32) @ M
        out *= inv_diag[None, :]
        rows = np.repeat(np.arange(Q.shape[0]), np.diff(Q.indptr))
        out[rows, Q.indices] += Q.data * own[Q.indices]
        return out

    return dual


def edlae_query_scores(
    Z: sp.csr_matrix,
    queries: sp.csr_matrix,
    *,
    lam: float,
    dropout: float = 0.0,
    pop_exponent: float = 0.0,
) -> np.ndarray:
    """``queries @ B`` for the EDLAE ``B`` of design ``Z`` without forming the items x items
    ``B`` when ``Z`` has fewer rows than items (:func:`edlae_query_scorer`). Model selection
    scores a few hundred validation users for many penalties this way, 3-5x faster than a
    fit."""
    return edlae_query_scorer(Z, lam=lam, dropout=dropout, pop_exponent=pop_exponent)(queries)


def spd_inverse(A: np.ndarray) -> np.ndarray:
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


class WeightedEDLAE(HeadRestricted):
    """The project's default: EASE-family with a user-weighted Gram matrix and EDLAE's
    dropout penalty, served from a pruned neighbour table.

    - ``user_exponent``: users weigh ``n_u^-user_exponent`` in the Gram matrix, so a few
      users with thousands of interactions do not dominate item-item co-occurrence.
    - ``dropout``: EDLAE penalty ``dropout/(1-dropout) * diag(G)`` on top of ``lam`` (more
      shrinkage for popular items, whose self-reconstruction EASE otherwise overfits).
    - ``pop_exponent``: the ``lam`` part of each item's penalty grows as its popularity to
      this power (module doc); 0 keeps it uniform.
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
        pop_exponent: float = 0.0,
    ) -> None:
        self._params: dict[str, Any] = dict(
            lam=lam,
            dropout=dropout,
            user_exponent=user_exponent,
            neighbours=neighbours,
            max_items=max_items,
        )
        if pop_exponent:  # a uniform penalty keeps the parameters versions already record
            self._params["pop_exponent"] = pop_exponent

    def _fit(self, X: sp.csr_matrix, progress: Progress) -> None:
        p = self._params
        n_items = X.shape[1]
        head = popular_head(X, p["max_items"])
        if head is not None:
            X = X[:, head].tocsr()
        B = ease_weights(
            X,
            lam=p["lam"],
            dropout=p["dropout"],
            user_exponent=p["user_exponent"],
            pop_exponent=p.get("pop_exponent", 0.0),
            progress=lambda f: progress(0.9 * f),
        )
        self._store(B, head, n_items, p["neighbours"])
