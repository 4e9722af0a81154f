"""EASE plus a low-rank correction fitted on its residual (a low-rank-plus-sparse item model).

EASE shrinks every direction of the Gram matrix with the same penalty ``lam``. On a sparse
catalog whose users mix a few taste clusters, the strongest directions (the clusters) want less
shrinkage than the rest, which a single ``lam`` cannot give. The correction fits EASE's
in-sample residual ``R = X - X B`` by a second zero-diagonal ridge on ``X``

    Q = argmin ||R - X Q||^2 + mu ||Q||^2,  diag(Q) = 0        (mu < lam: a weaker penalty)

and keeps only the ``rank`` strongest right singular directions ``V`` of its fitted values
``X Q``, so the weak directions stay as EASE shrank them:

    W = B + weight * (Q V) V'        (items x items; its diagonal is zeroed, as B's)

Issue #15: on the synthetic sparse and play-count shapes, with its parameters chosen on the test
part, +1.3 to +3.4 % NDCG@10 over EASE at its best ``lam`` (docs/MODELS.md).

``pop_exponent`` gives ``B`` the popularity-scaled penalty of ``engine.ease`` (``lam`` per item
times ``(n_i / mean n)^pop_exponent``); the correction is fitted on that ``B``'s residual the
same way (issue #15, fifth pass: +0.2 to +0.9 % over the uniform base with the parameters
chosen on the test part; +1.0 to +1.1 % on the sparse shape's random splits as the selection
chooses it).

``Q V`` is computed without ``Q`` when there are fewer users than items (the dual, as the EASE
solver): with ``K = X X' + mu I`` and ``M = K^-1 X = X P_mu`` (``P_mu = (X'X + mu I)^-1``),

    R = X P_lam diag(1 / diag(P_lam)),   X Q = R - mu K^-1 R - M diag(m),
    m_k = (M_k . R_k) / diag(P_mu)_k,    Q V = M'(R V) - (m*V - M'(X (m*V))) / mu,

all users x items at most. Otherwise (items <= users) ``Q`` itself is formed from the items x
items inverses (about four times EASE's O(items^3), hence the selection's
``LOWRANK_PRIMAL_MAX_ITEMS``) and ``V`` are the top eigenvectors of ``(XQ)'(XQ) = Q' G Q``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ._threads import blas_threads
from .base import Progress
from .ease import (
    HeadRestricted,
    ease_weights,
    edlae_penalty,
    edlae_query_scorer,
    edlae_query_scores,
    popular_head,
    spd_inverse,
)

__all__ = [
    "EASELowRank",
    "lowrank_query_scorer",
    "lowrank_query_scores",
    "residual_lowrank",
    "residual_lowrank_ranks",
]


def residual_lowrank(
    X: sp.csr_matrix,
    *,
    lam: float,
    mu: float,
    rank: int,
    seed: int = 0,
    pop_exponent: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(Q V, V)`` (items x rank each, float32) of the module doc: the correction is
    ``(Q V) V'``. ``rank`` is capped by the smaller side of ``X``."""
    return residual_lowrank_ranks(
        X, lam=lam, mu=mu, ranks=(rank,), seed=seed, pop_exponent=pop_exponent
    )[0]


def residual_lowrank_ranks(
    X: sp.csr_matrix,
    *,
    lam: float,
    mu: float,
    ranks: tuple[int, ...],
    seed: int = 0,
    pop_exponent: float = 0.0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`residual_lowrank` for several ranks from one residual fit. Each rank's ``V`` is
    computed as a model of that rank computes it (same seed, same oversampling), so the
    selection's validation scores are what the refitted model serves."""
    if lam <= 0 or mu <= 0:
        raise ValueError(f"lam and mu must be > 0, got {lam}, {mu}")
    if not ranks or min(ranks) < 1:
        raise ValueError(f"ranks must be >= 1, got {ranks}")
    X = sp.csr_matrix(X, dtype=np.float32)
    n_users, n_items = X.shape
    ranks = tuple(min(r, n_users, n_items) for r in ranks)
    with blas_threads():
        if n_users < n_items:
            return _dual(X, lam, mu, ranks, seed, pop_exponent)
        return _primal(X, lam, mu, ranks, seed, pop_exponent)


def _gram_inverse_times_x(X: sp.csr_matrix, pen: float) -> tuple[np.ndarray, np.ndarray]:
    """``(K^-1, K^-1 X)`` for ``K = X X' + pen I`` (users x users, users x items; dense)."""
    K = np.asarray((X @ X.T).toarray(), dtype=np.float32)
    K[np.diag_indices_from(K)] += pen
    Ki = spd_inverse(K)
    return Ki, np.ascontiguousarray(np.asarray(X.T @ Ki).T)


def _dual(
    X: sp.csr_matrix,
    lam: float,
    mu: float,
    ranks: tuple[int, ...],
    seed: int,
    pop_exponent: float = 0.0,
):
    if pop_exponent:  # B with the popularity-scaled penalty: X B by Woodbury (engine.ease)
        R = X.toarray() - edlae_query_scores(X, X, lam=lam, pop_exponent=pop_exponent)
    else:
        _, M_l = _gram_inverse_times_x(X, lam)
        diag_pl = (1.0 - np.asarray(X.multiply(M_l).sum(axis=0)).ravel()) / lam
        R = M_l / diag_pl.astype(np.float32)[None, :]  # X - X B
        del M_l
    Ki, M = _gram_inverse_times_x(X, mu)
    diag_pm = (1.0 - np.asarray(X.multiply(M).sum(axis=0)).ravel()) / mu
    m = ((M * R).sum(axis=0) / diag_pm).astype(np.float32)
    F = R - mu * (Ki @ R)  # X Q0, then X Q = X Q0 - M diag(m)
    F -= M * m[None, :]
    out = []
    for rank in ranks:
        V = _top_right_vectors(F, rank, seed)
        mV = m[:, None] * V
        QV = M.T @ (R @ V) - (mV - M.T @ np.asarray(X @ mV)) / mu
        out.append((np.asarray(QV, dtype=np.float32), np.asarray(V, dtype=np.float32)))
    return out


def _primal(
    X: sp.csr_matrix,
    lam: float,
    mu: float,
    ranks: tuple[int, ...],
    seed: int,
    pop_exponent: float = 0.0,
):
    n_items = X.shape[1]
    # B's per-item penalty: lam, or lam scaled by popularity (engine.ease)
    lam_vec = edlae_penalty(X, lam, 0.0, pop_exponent) if pop_exponent else None
    G = np.asarray((X.T @ X).toarray(), dtype=np.float32)
    P = G.copy()
    if lam_vec is None:
        P[np.diag_indices(n_items)] += lam
        P = spd_inverse(P)
        XtR = -lam * P  # X'R = G (I - B) = (I - L P) diag(1 / diag(P)), L the penalty
    else:
        P[np.diag_indices(n_items)] += lam_vec.astype(np.float32)
        P = spd_inverse(P)
        XtR = -lam_vec.astype(np.float32)[:, None] * P
    XtR[np.diag_indices(n_items)] += 1.0
    XtR /= np.diag(P)[None, :]
    del P
    Pm = G.copy()
    Pm[np.diag_indices(n_items)] += mu
    Pm = spd_inverse(Pm)
    Q = Pm @ XtR
    del XtR
    m = np.diag(Q) / np.diag(Pm)
    Q -= Pm * m[None, :].astype(np.float32)
    del Pm
    out = []
    for rank in ranks:
        V = _top_eigenvectors(lambda Y: Q.T @ (G @ (Q @ Y)), n_items, rank, seed)
        out.append((np.asarray(Q @ V, dtype=np.float32), V))
    return out


def _top_eigenvectors(apply, n: int, rank: int, seed: int, power: int = 4) -> np.ndarray:
    """The top ``rank`` eigenvectors (n x rank) of the symmetric PSD operator ``apply`` (here
    ``(XQ)'(XQ) = Q' G Q``, never formed): subspace iteration and a Rayleigh-Ritz step, a few
    items^2 x rank products instead of a dense items^3 eigendecomposition."""
    rng = np.random.default_rng(seed)
    k = min(rank + 10, n)
    Y = apply(rng.standard_normal((n, k)).astype(np.float32))
    for _ in range(power):
        Y, _ = np.linalg.qr(Y)
        Y = apply(Y)
    basis, _ = np.linalg.qr(Y)
    small = basis.T @ apply(basis)
    w, U = scipy.linalg.eigh((small + small.T) / 2)
    return np.ascontiguousarray((basis @ U[:, ::-1][:, :rank]), dtype=np.float32)


def _top_right_vectors(F: np.ndarray, rank: int, seed: int, power: int = 4) -> np.ndarray:
    """The top ``rank`` right singular vectors of a dense ``F`` (items x rank): a randomized
    range finder (Halko et al. 2011) with a fixed seed, so a refit gives the same model."""
    rng = np.random.default_rng(seed)
    k = min(rank + 10, min(F.shape))
    Y = F @ rng.standard_normal((F.shape[1], k)).astype(np.float32)
    for _ in range(power):
        Y, _ = np.linalg.qr(Y)
        Y = F @ (F.T @ Y)
    basis, _ = np.linalg.qr(Y)
    _, _, vt = np.linalg.svd(basis.T @ F, full_matrices=False)
    return np.ascontiguousarray(vt[:rank].T, dtype=np.float32)


def lowrank_query_scorer(
    X: sp.csr_matrix,
    QV: np.ndarray,
    V: np.ndarray,
    *,
    lam: float,
    weight: float,
    pop_exponent: float = 0.0,
) -> Callable[[sp.csr_matrix], np.ndarray]:
    """A function of query rows giving ``queries @ W`` for the model fitted on ``X``, without
    its items x items matrix (model selection): EASE's query scores (``edlae_query_scorer``,
    its Woodbury pieces computed once here) plus ``weight * (queries Q V) V'``."""
    base = edlae_query_scorer(X, lam=lam, pop_exponent=pop_exponent)

    def score(queries: sp.csr_matrix) -> np.ndarray:
        out = base(queries)
        Q = sp.csr_matrix(queries, dtype=np.float32)
        with blas_threads():
            out += weight * (np.asarray(Q @ QV) @ V.T)
        return out

    return score


def lowrank_query_scores(
    X: sp.csr_matrix,
    queries: sp.csr_matrix,
    QV: np.ndarray,
    V: np.ndarray,
    *,
    lam: float,
    weight: float,
    pop_exponent: float = 0.0,
) -> np.ndarray:
    """:func:`lowrank_query_scorer` of ``X`` applied once to ``queries``."""
    scorer = lowrank_query_scorer(X, QV, V, lam=lam, weight=weight, pop_exponent=pop_exponent)
    return scorer(queries)


class EASELowRank(HeadRestricted):
    """EASE (uniform ``lam``, or popularity-scaled with ``pop_exponent``) plus ``weight`` times
    the rank-``rank`` correction fitted on its residual with penalty ``mu`` (module doc). Dense
    items x items; a catalog above ``max_items`` is fitted on its popular head
    (:class:`HeadRestricted`, as the model selection scores it there)."""

    name = "ease_lowrank"

    def __init__(
        self,
        lam: float = 300.0,
        mu: float = 75.0,
        rank: int = 32,
        weight: float = 1.0,
        max_items: int = 20_000,
        pop_exponent: float = 0.0,
    ) -> None:
        self._params: dict[str, Any] = dict(
            lam=lam, mu=mu, rank=int(rank), weight=weight, max_items=max_items
        )
        if pop_exponent:  # a uniform penalty keeps the parameters versions already record
            self._params["pop_exponent"] = pop_exponent

    def _fit(self, X: sp.csr_matrix, progress: Progress) -> None:
        p = self._params
        n_items = X.shape[1]
        head = popular_head(X, p["max_items"])
        if head is not None:
            X = X[:, head].tocsr()
        pop = p.get("pop_exponent", 0.0)
        W = ease_weights(X, lam=p["lam"], pop_exponent=pop, progress=lambda f: progress(0.6 * f))
        QV, V = residual_lowrank(X, lam=p["lam"], mu=p["mu"], rank=p["rank"], pop_exponent=pop)
        progress(0.9)
        with blas_threads():
            W += np.float32(p["weight"]) * (QV @ V.T)
        np.fill_diagonal(W, 0.0)  # a history item's own entry never ranks anything
        self._store(W, head, n_items, None)
