"""Value-weighted training (engine.values): the weights, the selection's value-weighted
candidates, and a value-weighted version served with the weights it was trained with."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender import engine, selection, selection_search
from recommender.evaluation import Interactions, evaluate, split


def _rated(n_users=150, n_items=90, clusters=3, per_user=18, seed=0, timed=True, noise_rating=1.0):
    """Users who rate one cluster of items 4-5 and a few random items ``noise_rating``:
    the values say which interactions are taste."""
    rng = np.random.default_rng(seed)
    members = np.array_split(rng.permutation(n_items), clusters)
    rows, cols, stamps, vals = [], [], [], []
    for u in range(n_users):
        pool = members[u % clusters]
        liked = [int(i) for i in rng.choice(pool, size=per_user - 4, replace=False)]
        noise = [int(i) for i in rng.choice(n_items, size=4, replace=False) if i not in liked]
        picks = liked + noise
        order = rng.permutation(len(picks))
        rows += [u] * len(picks)
        cols += [picks[k] for k in order]
        vals += [(float(rng.choice([4.0, 5.0])) if k < len(liked) else noise_rating) for k in order]
        stamps += list(range(1000 * u, 1000 * u + len(picks))) if timed else [0] * len(picks)
    shape = (n_users, n_items)
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)
    T = sp.csr_matrix((np.asarray(stamps, float), (rows, cols)), shape=shape)
    V = sp.csr_matrix((np.asarray(vals, float), (rows, cols)), shape=shape)
    for M in (X, T, V):
        M.sort_indices()
    return X, T, V


def test_value_weights_average_one_per_user_and_a_like_weighs_one() -> None:
    w = engine.row_value_weights(np.array([4.0, 5.0, np.nan, 1.0]))
    rated = np.log1p([4.0, 5.0, 1.0])
    np.testing.assert_allclose(w[[0, 1, 3]], rated / rated.mean(), rtol=1e-6)
    assert w[2] == 1.0
    V = sp.csr_matrix(np.array([[4.0, 7.0, 5.0], [0, 2.0, 0]]))
    V.data[1] = np.nan  # a like
    W = engine.value_weights(V)
    assert W.nnz == V.nnz
    np.testing.assert_allclose(W[0].toarray().ravel(), engine.row_value_weights([4.0, np.nan, 5.0]))
    assert W[1, 1] == pytest.approx(1.0)  # one valued interaction: its own mean
    with pytest.raises(ValueError):
        engine.row_value_weights([1.0], "square")


def test_a_site_without_value_signal_never_gets_a_weighted_candidate() -> None:
    X, T, V = _rated(seed=1)
    likes = V.copy()
    likes.data[:] = np.nan  # likes only
    equal = V.copy()
    equal.data[:] = 4.0  # every rating equal
    for values in (None, likes, equal):
        assert values is None or not engine.has_value_signal(values)
        sel = selection.select(X, T, values=values, budget_seconds=60)
        assert not any("values" in r["family"] for r in sel.table())
        assert "value_weight" not in sel.params
    assert engine.has_value_signal(V)


def test_the_selection_records_a_value_weighted_winner_that_its_params_rebuild() -> None:
    X, T, V = _rated(seed=2, per_user=24)
    sel = selection.select(X, T, values=V, budget_seconds=60)
    families = {r["family"] for r in sel.table()}
    assert {"edlae_values", "session_values"} <= families
    # the values separate taste from noise here: a value-weighted candidate wins
    assert sel.params.get("value_weight") == "log1p", sel.label
    model = engine.get_model(sel.algorithm, **selection.engine_params(sel.params))
    assert {**model.params, "value_weight": "log1p"} == sel.params
    with pytest.raises(ValueError):
        selection.fit_selected(sel, X, T)  # a value-weighted winner needs the values
    fitted = selection.fit_selected(sel, X, T, values=V)
    assert fitted.score_users(engine.value_weights(V)[:3]).shape == (3, X.shape[1])


@pytest.mark.parametrize("timed", [True, False])
def test_value_weighted_validation_scores_are_what_the_refitted_model_scores(timed) -> None:
    """Each value-weighted trial is scored with the weighted histories; the model its params
    rebuild, fitted on the same rows with the values, scores the weighted histories the same."""
    X, T, V = _rated(seed=3, timed=timed)
    T = T if timed else None
    users = np.arange(40)
    W = engine.value_weights(V)
    s = selection_search.Search(X, T, X[users], X[users], budget=60.0, dense_max_items=20_000)
    s.W, s.W_q = W, W[users]
    like = selection_search.Trial(
        "edlae", "edlae", "wedlae", dict(lam=30.0, dropout=0.1, user_exponent=0.5), 0.0, 0.0, 0.0
    )
    selection_search.values_family(s, like)
    families = {t.family for t in s.trials}
    assert families == ({"edlae_values", "session_values"} if timed else {"edlae_values"})
    # with timestamps the weighted EDLAE walk only sets the session term's lam
    rescored = {"session_values"} if timed else {"edlae_values"}
    assert {f for f in s.rescore if "values" in f} == rescored
    for family in rescored:
        best, rescore = s.rescore[family]
        assert best.params["value_weight"] == "log1p"
        served = selection.fit_model(best.algorithm, best.params, X, T, V).score_users(W[users])
        seen = X[users].toarray() > 0
        for scores in (s.scores[best.label], rescore(W[users])):
            np.testing.assert_allclose(scores[~seen], served[~seen], atol=1e-3)


def test_evaluate_passes_the_files_values_to_the_selection_and_the_refit() -> None:
    X, T, V = _rated(seed=4)
    coo = X.tocoo()
    data = Interactions(
        users=coo.row.astype(np.int64) + 1,
        items=coo.col.astype(np.int64) + 1,
        timestamps=np.asarray(T[coo.row, coo.col]).ravel().astype(np.int64),
        values=np.asarray(V[coo.row, coo.col]).ravel().astype(np.float32),
    )
    train, test = split(data, "random", seed=0)
    model = selection.SelectedModel(validation="random", budget_seconds=60)
    evaluate(model, train, test)
    assert model.selection is not None
    assert "edlae_values" in {r["family"] for r in model.selection.table()}
    if model.selection.params.get("value_weight"):
        # the version model scores the protocol's users on their value weights
        binary = selection.VersionModel(model.selection.algorithm, model.selection.params)
        with pytest.raises(ValueError):
            binary.fit(X, timestamps=T)


# --------------------------------------------------------------------------- serving


@pytest.mark.django_db(transaction=False)
def test_serving_scores_a_value_weighted_version_with_its_training_weights(movielens_db):
    """A value-weighted version trained on ml-latest-small: a user's served scores are their
    value-weighted training row (the weights the selection validated with) times the model's
    weights, for the favourites serving reads."""
    from recommender import history, history_read, scoring, services, storage, training_data

    version = services.training_start(
        algorithm="wedlae", params={"lam": 19.2, "value_weight": "log1p"}
    )
    services.model_train(version_id=version.pk)
    version.refresh_from_db()
    assert version.params["value_weight"] == "log1p" and version.status == "active"
    data = training_data.training_data_read()
    W_rows = engine.value_weights(data.values)
    item_ids, weights = storage.dense_weights_load(version_id=version.pk)
    for row in (0, 14):  # users with and without ratings below serving's "liked"
        user_id = int(data.user_ids[row])
        served = history.history_for_version(
            history_read.user_history_ids(user_id=user_id), version
        )
        expected = dict(
            zip(data.item_ids[W_rows[row].indices].tolist(), W_rows[row].data.tolist(), strict=True)
        )
        assert len(set(served.weights.values())) > 1  # ratings weigh differently
        for item, w in served.weights.items():
            assert w == pytest.approx(expected[item], rel=1e-5)
        x = np.zeros(len(item_ids), np.float32)
        pos = np.searchsorted(item_ids, served.liked)
        x[pos] = [served.weights[i] for i in served.liked]
        want = x @ np.asarray(weights)
        got = scoring.score_neighbours(version, served, limit=20)
        np.testing.assert_allclose(
            got.scores, want[np.searchsorted(item_ids, got.item_ids)], rtol=1e-4
        )


@pytest.mark.django_db(transaction=False)
def test_a_run_asking_for_an_unknown_value_weight_is_refused(db):
    from recommender import services
    from recsite.exceptions import ApplicationError

    with pytest.raises(ApplicationError, match="value_weight"):
        services.training_start(algorithm="wedlae", params={"value_weight": "square"})
