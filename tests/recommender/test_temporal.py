"""recommender.engine.temporal (session_ease): window Gram rows, recency weights, the sparse
Woodbury solver, the timestamp path through evaluation. No database needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.engine import WeightedEDLAE, ease_weights, get_model
from recommender.engine.temporal import (
    SessionEASE,
    recency_weights,
    sparse_dual_ease,
    window_rows,
)
from recommender.evaluation import (
    build_timestamp_matrix,
    build_train_matrix,
    evaluate,
    load_ratings_csv,
    split,
)


@pytest.fixture(scope="module")
def tiny() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    rng = np.random.default_rng(5)
    X = sp.csr_matrix((rng.random((30, 40)) < 0.3).astype(np.float32))
    X.sort_indices()
    T = X.copy().astype(np.float64)
    T.data = rng.integers(0, 1000, size=X.nnz).astype(np.float64)
    return X, T


def test_registered() -> None:
    m = get_model("session_ease")
    assert isinstance(m, SessionEASE) and m.uses_timestamps
    assert m.params["window"] == 30 and m.params["recency"] == 1.0
    assert not WeightedEDLAE.uses_timestamps


def test_window_rows_follow_chronology() -> None:
    # one user, items 0..5 rated at times 5,4,3,2,1,0 -> chronological order 5,4,3,2,1,0
    X = sp.csr_matrix(np.ones((1, 6), dtype=np.float32))
    T = X.astype(np.float64)  # same sparsity; a timestamp of 0 must be an explicit entry
    T.data = np.array([5, 4, 3, 2, 1, 0], dtype=np.float64)
    S = window_rows(X, T, window=3, stride=2, window_exponent=0.0)
    got = [sorted(S[r].indices.tolist()) for r in range(S.shape[0])]
    # windows at positions 0-2, 2-4 and the end-aligned 3-5 of the sequence [5,4,3,2,1,0]
    assert got == [[3, 4, 5], [1, 2, 3], [0, 1, 2]]
    assert np.all(S.data == 1.0)
    # a short history is a single window
    S1 = window_rows(X, T, window=10, stride=5)
    assert S1.shape[0] == 1 and S1.nnz == 6


def test_recency_weights_latest_heaviest() -> None:
    w = recency_weights(np.array([7, 3, 9]), np.array([10.0, 30.0, 10.0]), 1.0, 10.0)
    # chronological: item 7 (t10), item 9 (t10, larger id later), item 3 (t30) latest
    assert w[1] == pytest.approx(2.0)
    assert w[2] == pytest.approx(1 + np.exp(-0.1))
    assert w[0] == pytest.approx(1 + np.exp(-0.2))


def test_sparse_dual_matches_dense_solver(tiny) -> None:
    X, _ = tiny
    B1 = sparse_dual_ease(X, 5.0, 0.1)
    B2 = ease_weights(X, lam=5.0, dropout=0.1, solver="primal")
    np.testing.assert_allclose(B1, B2, atol=2e-4)


@pytest.mark.parametrize("shape", [(15, 40), (30, 40), (120, 25)])
def test_sparse_ease_primal_and_dual_agree_and_auto_picks_the_smaller_inverse(shape) -> None:
    rng = np.random.default_rng(7)
    X = sp.csr_matrix((rng.random(shape) < 0.3).astype(np.float32))
    primal = sparse_dual_ease(X, 5.0, 0.1, method="primal")
    dual = sparse_dual_ease(X, 5.0, 0.1, method="dual")
    np.testing.assert_allclose(primal, dual, atol=2e-4)
    # serving reads rows (of the memory-mapped file): both must come back in C order
    assert primal.flags["C_CONTIGUOUS"] and dual.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(
        ease_weights(X, lam=5.0, dropout=0.1, solver="primal"), primal, atol=2e-4
    )
    np.testing.assert_array_equal(
        sparse_dual_ease(X, 5.0, 0.1), primal if shape[0] >= shape[1] else dual
    )
    with pytest.raises(ValueError):
        sparse_dual_ease(X, 5.0, 0.1, method="magic")


def test_without_timestamps_equals_wedlae(tiny) -> None:
    X, _ = tiny
    a = SessionEASE(lam=5.0).fit(X).weights
    b = WeightedEDLAE(lam=5.0).fit(X).weights
    np.testing.assert_allclose(a, b, atol=2e-4)


def test_timestamps_change_weights_and_scoring(tiny) -> None:
    X, T = tiny
    m = SessionEASE(lam=5.0, window=5, stride=3).fit(X, timestamps=T)
    plain = SessionEASE(lam=5.0).fit(X)
    assert not np.allclose(m.weights, plain.weights)
    s_plain = m.score_users(X[:3])
    s_time = m.score_users(X[:3], timestamps_rows=T[:3])
    # scoring = sum over history of W[h, i] * recency weight of h
    Xw = m.history_weights(X[:3], T[:3])
    np.testing.assert_allclose(s_time, np.asarray(Xw @ m.weights), rtol=1e-5, atol=1e-6)
    assert not np.allclose(s_plain, s_time)
    # recommend() with timestamps scores exactly like score_users
    h = X[0].indices
    recs = m.recommend(h, n=5, timestamps=T[0].data)
    best = np.where(np.isin(np.arange(X.shape[1]), h), -np.inf, s_time[0])
    assert recs[0].item == int(np.argmax(best))
    assert not set(h) & {r.item for r in recs}


def test_rejects_misaligned_timestamps(tiny) -> None:
    X, T = tiny
    with pytest.raises(ValueError, match="sparsity"):
        SessionEASE().fit(X, timestamps=T[:, :-1])


def test_evaluate_passes_timestamps(movielens_dir: Path) -> None:
    d = load_ratings_csv(movielens_dir / "ratings.csv")
    keep = d.users <= 120
    d = d.take(keep)
    s = split(d, "time")
    tm = build_train_matrix(s.train)
    T = build_timestamp_matrix(s.train, tm)
    assert np.array_equal(T.indptr, tm.X.indptr) and np.array_equal(T.indices, tm.X.indices)
    seen = {}

    class Spy(SessionEASE):
        def fit(self, X, progress=None, timestamps=None):
            seen["fit"] = timestamps is not None
            return super().fit(X, progress, timestamps=timestamps)

        def score_users(self, X_rows, timestamps_rows=None):
            seen["score"] = timestamps_rows is not None
            return super().score_users(X_rows, timestamps_rows)

    r = evaluate(lambda: Spy(), s.train, s.test)
    assert seen == {"fit": True, "score": True}
    base = evaluate(lambda: get_model("wedlae"), s.train, s.test)
    assert r["ndcg@10"] > base["ndcg@10"]
