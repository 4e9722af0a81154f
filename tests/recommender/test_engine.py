"""recommender.engine: every model behind one interface, on a real slice of ml-latest-small
and on a tiny synthetic matrix. No database needed."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.engine import (
    DEFAULT_MODEL,
    DEFAULT_PARAMS,
    MODEL_NAMES,
    CatalogTooLargeError,
    Contribution,
    FactorRecommender,
    InteractionMatrix,
    ItemItemRecommender,
    NotFittedError,
    Recommender,
    Scored,
    build_matrix,
    get_model,
    history_matrix,
    popular_head,
)
from recommender.evaluation import evaluate, load_ratings_csv, split

REPO = Path(__file__).resolve().parents[2]

# fast but representative parameters for the slice
FAST: dict[str, dict] = {
    "als": {"iterations": 8},
    "bpr": {"iterations": 30},
    "blend": {
        "parts": [
            {"model": "wedlae", "params": {"lam": 20.0}, "weight": 0.7},
            {"model": "rp3beta", "params": {"K": None}, "weight": 0.3},
        ]
    },
}


def make(name: str, **params) -> Recommender:
    return get_model(name, **{**FAST.get(name, {}), **params})


@pytest.fixture(scope="module")
def ml_slice(movielens_dir: Path) -> InteractionMatrix:
    """The first 150 users of ml-latest-small (~24k interactions, ~6k items)."""
    d = load_ratings_csv(movielens_dir / "ratings.csv")
    keep = d.users <= 150
    return build_matrix(d.users[keep], d.items[keep])


@pytest.fixture(scope="module")
def fitted(ml_slice: InteractionMatrix) -> dict[str, Recommender]:
    return {name: make(name).fit(ml_slice.X) for name in MODEL_NAMES}


@pytest.fixture(scope="module")
def tiny() -> sp.csr_matrix:
    rng = np.random.default_rng(3)
    X = (rng.random((40, 25)) < 0.25).astype(np.float32)
    X[:, 24] = 0.0  # an item nobody has
    X[0, :3] = 1.0
    return sp.csr_matrix(X)


def _history(m: InteractionMatrix, row: int) -> np.ndarray:
    return m.X[row].indices.astype(np.int64)


# --------------------------------------------------------------------------- registry


def test_registry() -> None:
    expected = {
        "popularity",
        "als",
        "bpr",
        "itemknn",
        "rp3beta",
        "ease",
        "ease_lowrank",
        "wedlae",
        "session_ease",
        "blend",
        DEFAULT_MODEL,
    }
    assert set(MODEL_NAMES) == expected
    assert dict(DEFAULT_PARAMS).items() <= get_model(DEFAULT_MODEL).params.items()
    assert get_model("ease").params["lam"] == 300.0
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        get_model("nope")
    with pytest.raises(TypeError):
        get_model("ease", bogus=1)
    with pytest.raises(NotFittedError):
        get_model("ease").recommend(np.array([1]), n=5)


# --------------------------------------------------------------------------- every model


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_tiny_matrix(name: str, tiny: sp.csr_matrix) -> None:
    model = make(name, **({"K": 10} if name in ("itemknn", "rp3beta") else {})).fit(tiny)
    scores = model.score_users(tiny)
    assert scores.shape == tiny.shape and scores.dtype == np.float32
    assert np.isfinite(scores).all()
    recs = model.recommend(np.array([0, 1, 2]), n=30, exclude=np.array([3, 4]))
    items = [r.item for r in recs]
    assert not {0, 1, 2, 3, 4} & set(items)
    assert len(items) == len(set(items)) and len(items) <= 25 - 5
    assert all(isinstance(r, Scored) for r in recs)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_recommend_excludes_history_and_exclude(name: str, fitted, ml_slice) -> None:
    model = fitted[name]
    hist = _history(ml_slice, 7)
    exclude = np.array([int(i) for i in np.argsort(-model._item_popularity)[:15]])
    recs = model.recommend(hist, n=25, exclude=exclude)
    items = np.array([r.item for r in recs])
    assert len(items) == 25 and len(set(items.tolist())) == 25
    assert not np.isin(items, hist).any()
    assert not np.isin(items, exclude).any()
    scores = [r.score for r in recs]
    assert scores == sorted(scores, reverse=True)
    # recommend is score_users restricted and sorted
    full = model.score_users(history_matrix(hist, model.n_items))[0]
    assert scores[0] == pytest.approx(float(full[items[0]]), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_similar_items_excludes_itself(name: str, fitted, ml_slice) -> None:
    model = fitted[name]
    item = int(np.argmax(model._item_popularity))  # a popular item has neighbours
    sims = model.similar_items(item, n=10)
    assert len(sims) == 10
    assert item not in [s.item for s in sims]
    assert [s.score for s in sims] == sorted((s.score for s in sims), reverse=True)


@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if n != "popularity"])
def test_explain_uses_history_only(name: str, fitted, ml_slice) -> None:
    model = fitted[name]
    hist = _history(ml_slice, 3)
    target = model.recommend(hist, n=1)[0]
    why = model.explain(hist, target.item, top=5)
    assert 1 <= len(why) <= 5
    assert all(isinstance(c, Contribution) for c in why)
    assert set(c.item for c in why) <= set(hist.tolist())
    weights = [c.weight for c in why]
    assert weights == sorted(weights, reverse=True)
    every = model.explain(hist, target.item, top=len(hist))
    total = sum(c.weight for c in every)
    if name == "bpr":  # contributions explain the score minus the item's bias term
        total += float(model.item_factors[target.item, -1])
    if name in ("itemknn", "rp3beta"):  # exact, but zero-weight items are left out
        assert total == pytest.approx(target.score, rel=1e-4)
    else:
        assert total == pytest.approx(target.score, rel=1e-3, abs=1e-4)


def test_popularity_explains_nothing(fitted, ml_slice) -> None:
    assert fitted["popularity"].explain(_history(ml_slice, 3), 0) == []


# --------------------------------------------------------------------------- quality


def test_models_beat_popularity_on_a_holdout(movielens_dir: Path) -> None:
    d = load_ratings_csv(movielens_dir / "ratings.csv")
    keep = d.users <= 150
    sub = type(d)(d.users[keep], d.items[keep], d.timestamps[keep], d.values[keep])
    train, test = split(sub, "random", seed=0)
    r = {
        n: evaluate(get_model(n), train, test) for n in ("popularity", "als", "ease", DEFAULT_MODEL)
    }
    assert 0.12 < r["popularity"]["recall@20"] < 0.25
    # (measured: popularity 0.162/0.176, ALS 0.219/0.195, EASE 0.303/0.301, default 0.305/0.311)
    for n, margin in (("als", 0.02), ("ease", 0.05), (DEFAULT_MODEL, 0.05)):
        assert r[n]["recall@20"] > r["popularity"]["recall@20"] + margin, n
        assert r[n]["ndcg@10"] > r["popularity"]["ndcg@10"] + margin / 2, n
    # the default is an EASE-family model: it must not fall behind EASE on this slice
    assert r[DEFAULT_MODEL]["recall@20"] > r["ease"]["recall@20"] - 0.01


# --------------------------------------------------------------------------- factor models


def test_als_fold_in(fitted, ml_slice) -> None:
    als = fitted["als"]
    assert isinstance(als, FactorRecommender)
    assert als.item_factors.shape == (ml_slice.X.shape[1], 64)
    assert als.item_factors.dtype == np.float32
    hist = _history(ml_slice, 11)[:10]
    u = als.user_vector(hist)
    before = [r.item for r in als.recommend(hist, n=10)]
    # scores are exactly user_vector . item_factors (what pgvector serves)
    s = als.score_users(history_matrix(hist, als.n_items))[0]
    np.testing.assert_allclose(s, als.item_factors @ u, rtol=1e-4, atol=1e-5)
    # add the top recommendations plus their neighbours to the history: a new user vector
    more = np.unique(np.concatenate([hist, np.array(before[:5])]))
    u2 = als.user_vector(more)
    after = [r.item for r in als.recommend(more, n=10)]
    assert np.linalg.norm(u2 - u) > 1e-3
    assert after != before
    assert not set(after) & set(more.tolist())
    # a brand-new user with a single item still gets a vector and recommendations
    assert len(als.recommend(np.array([int(np.argmax(als._item_popularity))]), n=5)) == 5


def test_bpr_user_vector_layout(fitted, ml_slice) -> None:
    bpr = fitted["bpr"]
    u = bpr.user_vector(_history(ml_slice, 5))
    assert u.shape == (bpr.item_factors.shape[1],) and u[-1] == 1.0  # bias slot


# --------------------------------------------------------------------------- item-item


def test_neighbour_table_reproduces_scores(ml_slice) -> None:
    X = ml_slice.X
    n = X.shape[1]
    ease = make("ease").fit(X)
    hist = _history(ml_slice, 20)
    dense = ease.score_users(history_matrix(hist, n))[0]
    full = ease.neighbour_table(k=n)  # nothing pruned: exact up to float32 rounding
    np.testing.assert_allclose(full.score(hist), dense, rtol=1e-4, atol=1e-5)
    # pruned table: <= k rows per item, no self pairs; K=200 keeps the top of the ranking
    t = ease.neighbour_table(k=200)
    assert np.bincount(t.item, minlength=n).max() <= 200
    assert not (t.item == t.neighbour).any()
    approx = t.score(hist)
    approx[hist] = dense[hist] = -np.inf
    top_dense = set(np.argsort(-dense)[:20].tolist())
    top_table = set(np.argsort(-approx)[:20].tolist())
    assert len(top_dense & top_table) >= 14
    # wedlae with neighbours=K scores with exactly its table
    m = make("wedlae", neighbours=50).fit(X)
    table = m.neighbour_table(k=50)
    np.testing.assert_allclose(
        table.score(hist), m.score_users(history_matrix(hist, n))[0], rtol=1e-5, atol=1e-6
    )
    assert len(table) <= 50 * n


def test_explain_contributions_are_table_weights(fitted, ml_slice) -> None:
    model = fitted[DEFAULT_MODEL]
    assert isinstance(model, ItemItemRecommender)
    hist = _history(ml_slice, 9)
    item = model.recommend(hist, n=1)[0].item
    W = model.weights
    for c in model.explain(hist, item, top=3):
        assert c.weight == pytest.approx(float(W[c.item, item]))


def test_ease_refuses_large_catalog(tiny) -> None:
    with pytest.raises(CatalogTooLargeError, match=r"25 items exceed max_items=20"):
        get_model("ease", max_items=20).fit(tiny)


def test_wedlae_restricts_large_catalog_to_popular_items(tiny) -> None:
    model = get_model("wedlae", max_items=10).fit(tiny)
    pop = np.asarray(tiny.getnnz(axis=0))
    head = set(np.argsort(-pop, kind="stable")[:10].tolist())
    scores = model.score_users(tiny)
    tail = sorted(set(range(25)) - head)
    assert np.isneginf(scores[:, tail]).all()
    assert np.isfinite(scores[:, sorted(head)]).all()
    recs = model.recommend(np.array([0, 1, 2]), n=25)
    assert {r.item for r in recs} <= head


def test_ease_float32_matches_float64_reference(tiny) -> None:
    X = tiny.toarray().astype(np.float64)
    G = X.T @ X + 7.0 * np.eye(X.shape[1])
    P = np.linalg.inv(G)
    B = P / -np.diag(P)
    np.fill_diagonal(B, 0.0)
    for solver_users in (tiny, sp.csr_matrix(np.vstack([X, X, X]))):  # dual, then primal
        Xs = solver_users.toarray().astype(np.float64)
        G = Xs.T @ Xs + 7.0 * np.eye(Xs.shape[1])
        P = np.linalg.inv(G)
        B = P / -np.diag(P)
        np.fill_diagonal(B, 0.0)
        W = get_model("ease", lam=7.0).fit(solver_users).weights
        np.testing.assert_allclose(W, B, atol=2e-5)


def test_models_pickle(fitted, ml_slice) -> None:
    hist = _history(ml_slice, 2)
    for name in ("als", DEFAULT_MODEL, "itemknn"):
        clone = pickle.loads(pickle.dumps(fitted[name]))
        assert clone.recommend(hist, n=5) == fitted[name].recommend(hist, n=5)


def test_build_matrix_maps_ids() -> None:
    m = build_matrix([10, 10, 30, 20, 10], [7, 5, 7, 9, 7])
    assert m.user_ids.tolist() == [10, 20, 30] and m.item_ids.tolist() == [5, 7, 9]
    assert m.X.toarray().tolist() == [[1, 1, 0], [0, 0, 1], [0, 1, 0]]
    assert m.history([9, 5, 404]).tolist() == [0, 2]
    assert m.user_index([30, 99]).tolist() == [2, -1]


def test_engine_is_pure_and_quiet() -> None:
    """No Django import, and implicit's OpenBLAS-threads warning never fires."""
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('error')\n"
        "import numpy as np, scipy.sparse as sp\n"
        "import recommender.engine as e, recommender.evaluation\n"
        "assert 'django' not in sys.modules, 'engine imported django'\n"
        "assert 'implicit' not in sys.modules, 'implicit imported eagerly'\n"
        "X = sp.random(60, 40, density=0.2, format='csr', random_state=0, dtype=np.float32)\n"
        "X.data[:] = 1\n"
        "for n in ('als', 'bpr', 'itemknn'):\n"
        "    e.get_model(n, **({'iterations': 2} if n != 'itemknn' else {})).fit(X)\n"
        "assert 'django' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert "OpenBLAS" not in out.stderr


# --------------------------------------------------------------------------- selection's paths


def test_query_scores_match_the_fitted_matrices(tiny: sp.csr_matrix) -> None:
    from recommender.engine import edlae_query_scores, rp3_query_scores, user_weighted

    Q = tiny[:10]
    for lam, dropout, exponent in ((30.0, 0.0, 0.0), (5.0, 0.2, 0.5)):
        W = get_model(
            "wedlae", lam=lam, dropout=dropout, user_exponent=exponent, max_items=100
        ).fit(tiny)
        fast = edlae_query_scores(user_weighted(tiny, exponent), Q, lam=lam, dropout=dropout)
        np.testing.assert_allclose(fast, Q @ W.weights, atol=1e-4)
    rp3 = get_model("rp3beta", alpha=0.7, beta=0.3, K=None).fit(tiny)
    fast = rp3_query_scores(tiny, Q, alpha=0.7, beta=0.3)
    np.testing.assert_allclose(fast, Q @ rp3.weights, atol=1e-5)


def test_query_scorer_with_fewer_rows_than_items_matches_the_fitted_matrix() -> None:
    """The Woodbury (dual) path, as the session and penalty walks score: weighted design rows,
    queries with real-valued weights (recency) and a duplicated entry, scored twice by one
    scorer."""
    from recommender.engine import edlae_query_scorer, user_weighted

    rng = np.random.default_rng(5)
    X = sp.csr_matrix((rng.random((15, 60)) < 0.3).astype(np.float32))
    lam, dropout, exponent = 2.0, 0.1, 0.5
    W = get_model("wedlae", lam=lam, dropout=dropout, user_exponent=exponent, max_items=100).fit(X)
    scorer = edlae_query_scorer(user_weighted(X, exponent), lam=lam, dropout=dropout)
    assert X.shape[0] < X.shape[1]  # the dual path
    Q = X[:6].multiply(rng.random((6, 60)) + 0.5).tocsr().astype(np.float32)
    # row 2 holds item 7 twice (a CSR with duplicates means their sum)
    rows = [(Q[r].indices, Q[r].data) for r in range(6)]
    rows[2] = (np.r_[rows[2][0], 7, 7], np.r_[rows[2][1], 0.25, 0.25])
    indptr = np.r_[0, np.cumsum([len(i) for i, _ in rows])]
    Q_dup = sp.csr_matrix(
        (np.concatenate([d for _, d in rows]), np.concatenate([i for i, _ in rows]), indptr),
        shape=Q.shape,
    )
    assert not Q_dup.has_canonical_format
    expected = Q_dup.toarray() @ W.weights
    for _ in range(2):
        np.testing.assert_allclose(scorer(Q_dup), expected, atol=1e-4)
    assert Q_dup.nnz == Q.nnz + 2  # the caller's queries are left as given


def test_blend_is_one_weighted_matrix(tiny: sp.csr_matrix) -> None:
    parts = [
        {"model": "ease", "params": {"lam": 30.0}, "weight": 0.6},
        {"model": "rp3beta", "params": {"K": None}, "weight": 0.4},
    ]
    blend = get_model("blend", parts=parts).fit(tiny)
    a = get_model("ease", lam=30.0).fit(tiny).weights
    b = get_model("rp3beta", K=None).fit(tiny).weights
    sa, sb = blend.scales
    np.testing.assert_allclose(blend.weights, 0.6 * a / sa + 0.4 * b / sb, atol=1e-5)
    assert sa != sb  # the parts' scales differ: the weights are on a common footing
    one = get_model("blend", parts=parts[:1]).fit(tiny)
    np.testing.assert_allclose(one.weights, a)
    assert get_model("blend", **blend.params).params == blend.params
    with pytest.raises(ValueError, match="at least one part"):
        get_model("blend", parts=[])
    with pytest.raises(ValueError, match="blend part"):
        get_model("blend", parts=[{"model": "als", "params": {}}])


def test_blend_recency_weighs_the_latest_history_item(tiny: sp.csr_matrix) -> None:
    parts = [{"model": "ease", "params": {"lam": 30.0}, "weight": 1.0}]
    plain = get_model("blend", parts=parts).fit(tiny)
    recent = get_model("blend", parts=parts, recency=2.0, recency_tau=1.0).fit(tiny)
    row = tiny[1]
    stamps = sp.csr_matrix(
        (np.arange(1, row.nnz + 1, dtype=float), row.indices.copy(), row.indptr.copy()),
        shape=row.shape,
    )
    latest = row.indices[-1]
    weights = np.ones(row.nnz)
    weights[-1] = 3.0  # 1 + 2 * exp(0)
    weights[:-1] = 1 + 2 * np.exp(-np.arange(row.nnz - 1, 0, -1))
    expected = (weights[None, :] @ plain.weights[row.indices]).ravel()
    got = recent.score_users(row, timestamps_rows=stamps)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert latest in row.indices


def test_pop_exponent_is_ease_on_column_weighted_input(tiny: sp.csr_matrix) -> None:
    """``pop_exponent`` e: EASE on ``X diag(s^(-1/2))`` with its scores weighted back, where
    ``s = (pop / mean pop)^e``, is EASE with the penalty ``lam * s`` per item."""
    from recommender.engine import edlae_query_scores

    lam, e = 4.0, 0.5
    model = get_model("wedlae", lam=lam, dropout=0.0, user_exponent=0.0, pop_exponent=e)
    W = model.fit(tiny).weights
    assert model.params["pop_exponent"] == e
    X = tiny.toarray().astype(np.float64)
    pop = X.sum(axis=0)
    seen = pop > 0
    s = (pop[seen] / pop[seen].mean()) ** e
    Xc = X[:, seen] / np.sqrt(s)[None, :]
    P = np.linalg.inv(Xc.T @ Xc + lam * np.eye(int(seen.sum())))
    Bc = np.eye(len(P)) - P / np.diag(P)[None, :]
    expected = np.zeros_like(W)
    expected[np.ix_(seen, seen)] = Bc * np.sqrt(s)[None, :] / np.sqrt(s)[:, None]
    np.testing.assert_allclose(W, expected, atol=1e-4)
    # it is not plain EASE: popular items' columns are shrunk more
    assert np.abs(W - get_model("ease", lam=lam).fit(tiny).weights).max() > 1e-2
    # the selection's query path scores with the same matrix
    fast = edlae_query_scores(tiny, tiny[:10], lam=lam, pop_exponent=e)
    np.testing.assert_allclose(fast, tiny[:10] @ W, atol=1e-4)
    # a uniform penalty records the parameters it always did
    assert "pop_exponent" not in get_model("wedlae").params


def _zero_diagonal_ridge(X: np.ndarray, T: np.ndarray, pen: float) -> np.ndarray:
    """Column k: the ridge of T[:, k] on every column of X but k (EASE's constraint), solved
    directly."""
    n = X.shape[1]
    out = np.zeros((n, n))
    for k in range(n):
        keep = np.arange(n) != k
        A = X[:, keep]
        out[keep, k] = np.linalg.solve(A.T @ A + pen * np.eye(n - 1), A.T @ T[:, k])
    return out


@pytest.mark.parametrize("shape", [(30, 12), (12, 30)])
def test_lowrank_correction_is_the_projected_ridge_of_eases_residual(shape) -> None:
    """``residual_lowrank`` (dual with fewer users than items, primal otherwise) equals its
    definition solved directly: Q, the zero-diagonal ridge (penalty mu) of EASE's residual
    X - XB on X, projected on the top right singular vectors V of XQ; the model's W is
    B + weight (Q V) V' with a zero diagonal, and the selection's query path matches it."""
    from recommender.engine import lowrank_query_scores, residual_lowrank

    rng = np.random.default_rng(1)
    Xs = sp.csr_matrix((rng.random(shape) < 0.35).astype(np.float32))
    X = Xs.toarray().astype(np.float64)
    lam, mu, rank, weight = 3.0, 1.0, 3, 1.5
    B = _zero_diagonal_ridge(X, X, lam)
    Q = _zero_diagonal_ridge(X, X - X @ B, mu)
    V = np.linalg.svd(X @ Q)[2][:rank].T
    expected = Q @ V @ V.T
    QV, Vh = residual_lowrank(Xs, lam=lam, mu=mu, rank=rank)
    np.testing.assert_allclose(QV @ Vh.T, expected, atol=1e-4)
    model = get_model("ease_lowrank", lam=lam, mu=mu, rank=rank, weight=weight)
    W = model.fit(Xs).weights
    full = B + weight * expected
    np.fill_diagonal(full, 0.0)
    np.testing.assert_allclose(W, full, atol=1e-4)
    assert np.abs(weight * expected).max() > 1e-2  # the correction is not negligible here
    fast = lowrank_query_scores(Xs, Xs[:5], QV, Vh, lam=lam, weight=weight)
    # the diagonal only scores a history item itself: compare the other entries
    unseen = X[:5] == 0
    np.testing.assert_allclose(fast[unseen], (X[:5] @ full)[unseen], atol=1e-4)


@pytest.mark.parametrize("shape", [(30, 12), (12, 30)])
def test_lowrank_correction_on_the_popularity_scaled_base(shape) -> None:
    """With ``pop_exponent`` the base is EASE with the per-item penalty ``lam s_i`` (row i of
    B penalised by it) and the correction is fitted on that base's residual, as above."""
    from recommender.engine import lowrank_query_scores, residual_lowrank
    from recommender.engine.ease import edlae_penalty

    rng = np.random.default_rng(2)
    Xs = sp.csr_matrix((rng.random(shape) < 0.35).astype(np.float32))
    X = Xs.toarray().astype(np.float64)
    lam, mu, rank, weight, pop = 3.0, 1.0, 3, 1.5, 0.5
    pen = edlae_penalty(Xs, lam, 0.0, pop)
    n = X.shape[1]
    B = np.zeros((n, n))
    for k in range(n):
        keep = np.arange(n) != k
        A = X[:, keep]
        B[keep, k] = np.linalg.solve(A.T @ A + np.diag(pen[keep]), A.T @ X[:, k])
    Q = _zero_diagonal_ridge(X, X - X @ B, mu)
    V = np.linalg.svd(X @ Q)[2][:rank].T
    expected = Q @ V @ V.T
    QV, Vh = residual_lowrank(Xs, lam=lam, mu=mu, rank=rank, pop_exponent=pop)
    np.testing.assert_allclose(QV @ Vh.T, expected, atol=1e-4)
    model = get_model("ease_lowrank", lam=lam, mu=mu, rank=rank, weight=weight, pop_exponent=pop)
    assert get_model(model.name, **model.params).params == model.params
    full = B + weight * expected
    np.fill_diagonal(full, 0.0)
    np.testing.assert_allclose(model.fit(Xs).weights, full, atol=1e-4)
    fast = lowrank_query_scores(Xs, Xs[:5], QV, Vh, lam=lam, weight=weight, pop_exponent=pop)
    unseen = X[:5] == 0
    np.testing.assert_allclose(fast[unseen], (X[:5] @ full)[unseen], atol=1e-4)


def test_lowrank_model_rebuilds_and_fits_a_large_catalog_on_its_popular_head(
    tiny: sp.csr_matrix,
) -> None:
    model = get_model("ease_lowrank", lam=4.0, mu=1.0, rank=2, weight=1.0)
    assert get_model(model.name, **model.params).params == model.params
    restricted = get_model("ease_lowrank", lam=4.0, mu=1.0, rank=2, max_items=10).fit(tiny)
    head = popular_head(tiny, 10)
    assert head is not None and len(head) == 10 and popular_head(tiny, 25) is None
    pop = np.asarray(tiny.getnnz(axis=0))
    assert set(head.tolist()) == set(np.argsort(-pop, kind="stable")[:10].tolist())
    tail = np.setdiff1d(np.arange(25), head)
    scores = restricted.score_users(tiny)
    assert np.isneginf(scores[:, tail]).all()
    # on the head: the model of the head's columns alone (10 neighbours a row: nothing pruned)
    alone = get_model("ease_lowrank", lam=4.0, mu=1.0, rank=2).fit(tiny[:, head].tocsr())
    np.testing.assert_allclose(
        scores[:, head], alone.score_users(tiny[:, head].tocsr()), rtol=1e-5, atol=1e-5
    )
    assert {r.item for r in restricted.recommend(np.array([0, 1]), n=25)} <= set(head.tolist())
