"""recommender.selection: the validation slice, the search, the refit, and a retrain that
selects (RECOMMENDER_MODEL=auto) against the real database."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender import engine, selection, selection_search
from recommender.evaluation import Interactions, evaluate, split


def _clustered(n_users=120, n_items=90, clusters=3, per_user=18, seed=0, timed=True):
    """Users who each like one cluster of items (CF signal) plus a little noise; timestamps
    follow each user's draw order."""
    rng = np.random.default_rng(seed)
    members = np.array_split(rng.permutation(n_items), clusters)
    rows, cols, stamps = [], [], []
    for u in range(n_users):
        pool = members[u % clusters]
        picks = list(rng.choice(pool, size=min(per_user - 3, len(pool)), replace=False))
        picks += list(rng.choice(n_items, size=3, replace=False))
        picks = list(dict.fromkeys(int(i) for i in picks))
        rows += [u] * len(picks)
        cols += picks
        stamps += list(range(1000 * u, 1000 * u + len(picks))) if timed else [0] * len(picks)
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    T = sp.csr_matrix((np.asarray(stamps, float), (rows, cols)), shape=(n_users, n_items))
    X.sort_indices()
    T.sort_indices()
    return X, T


def test_has_time_order() -> None:
    X, T = _clustered()
    assert selection.has_time_order(T)
    assert not selection.has_time_order(None)
    flat = T.copy()
    flat.data[:] = 7.0
    assert not selection.has_time_order(flat)


def test_time_validation_holds_out_each_users_latest() -> None:
    X, T = _clustered()
    X_fit, T_fit, users, truth = selection.validation_split(X, T, method="time")
    assert X_fit.nnz + truth.nnz == X.nnz
    for k, u in enumerate(users.tolist()[:20]):
        held = truth[k].indices
        kept_times = T_fit[u].data
        held_times = T[u, held].toarray().ravel()
        assert len(held) == max(1, round(0.2 * X[u].nnz))
        assert held_times.min() > kept_times.max()  # the latest ones, none kept
        assert not set(held) & set(X_fit[u].indices)


def test_random_validation_is_seeded_and_skips_small_users() -> None:
    X, _ = _clustered()
    X = X.tolil()
    X[0, :] = 0
    X[0, :3] = 1  # 3 interactions: never validated
    X = X.tocsr()
    X.eliminate_zeros()
    a = selection.validation_split(X, None, method="random", seed=1)
    b = selection.validation_split(X, None, method="random", seed=1)
    c = selection.validation_split(X, None, method="random", seed=2)
    assert 0 not in a[2]
    assert (a[3] != b[3]).nnz == 0
    assert (a[3] != c[3]).nnz > 0
    capped = selection.validation_split(X, None, method="random", max_users=10)
    assert len(capped[2]) == 10 and capped[3].shape[0] == 10


def test_select_returns_a_model_the_registry_rebuilds_and_its_table() -> None:
    X, T = _clustered()
    sel = selection.select(X, T, budget_seconds=60)
    assert sel.validation == "time"
    assert sel.algorithm in engine.MODEL_NAMES
    model = engine.get_model(sel.algorithm, **sel.params)  # the params rebuild it
    assert model.params == sel.params
    table = sel.table()
    assert [r["ndcg@10"] for r in table] == sorted((r["ndcg@10"] for r in table), reverse=True)
    assert sum(r["chosen"] for r in table) == 1
    families = {r["family"] for r in table}
    assert {"ease", "edlae", "rp3beta", "session", "blend"} <= families
    assert "als" not in families  # 15 % dense: above ALS_MAX_DENSITY
    assert any("rec=" in r["label"] for r in table)  # recency weights were tried
    # the winner is the best NDCG@10 once blends and recency pay their margin
    best = max(table, key=lambda r: r["ndcg@10"])
    chosen = next(r for r in table if r["chosen"])
    assert chosen["ndcg@10"] >= best["ndcg@10"] * (1 - 2 * selection_search.BLEND_MARGIN)
    fitted = selection.fit_selected(sel, X, T)
    assert fitted.score_users(X[:3]).shape == (3, X.shape[1])


def test_select_without_timestamps_validates_randomly_and_skips_time_terms() -> None:
    X, T = _clustered(timed=False)
    sel = selection.select(X, T, budget_seconds=60)
    assert sel.validation == "random"
    labels = [r["label"] for r in sel.table()]
    assert not any(label.startswith("session") or "rec=" in label for label in labels)
    assert sel.params.get("recency", 0.0) == 0.0


def test_selection_finds_signal_that_popularity_misses() -> None:
    X, T = _clustered(n_users=150, seed=3)
    sel = selection.select(X, T, budget_seconds=60)
    chosen = next(r for r in sel.table() if r["chosen"])
    assert sel.algorithm != "popularity"
    assert chosen["ndcg@10"] > 0.2  # one cluster of 30 items: CF must find it


def _interactions(X: sp.csr_matrix, T: sp.csr_matrix) -> Interactions:
    coo = X.tocoo()
    return Interactions(
        users=coo.row.astype(np.int64) + 1,
        items=coo.col.astype(np.int64) + 1,
        timestamps=np.asarray(T[coo.row, coo.col]).ravel().astype(np.int64),
        values=np.ones(coo.nnz, np.float32),
    )


def test_selected_model_is_a_scorer_for_the_protocol() -> None:
    X, T = _clustered(n_users=150, seed=4)
    train, test = split(_interactions(X, T), "random", seed=0)
    model = selection.SelectedModel(validation="random", budget_seconds=60)
    own = evaluate(model, train, test)
    pop = evaluate(engine.get_model("popularity"), train, test)
    assert model.selection is not None and model.selection.validation == "random"
    assert own["ndcg@10"] > pop["ndcg@10"]
    with pytest.raises(engine.NotFittedError):
        selection.SelectedModel().score_users(X[:1])


def test_no_user_to_validate_on_falls_back_to_the_fixed_default() -> None:
    X = sp.csr_matrix(np.eye(6, 8, dtype=np.float32))  # one interaction each
    sel = selection.select(X)
    assert sel.algorithm == engine.DEFAULT_MODEL and sel.n_validation_users == 0
    assert [r["chosen"] for r in sel.table()] == [True]
    tiny = sp.csr_matrix(np.ones((8, 6), dtype=np.float32))
    tiny[np.arange(8), np.arange(8) % 6] = 0  # fewer items than a top 20
    tiny.eliminate_zeros()
    assert selection.select(tiny).algorithm in engine.MODEL_NAMES


def test_large_catalogs_select_among_als_and_the_head_families(monkeypatch) -> None:
    X, T = _clustered(n_items=60)
    sel = selection.select(X, T, dense_max_items=50)
    families = {r["family"] for r in sel.table()}
    assert {"als", "ease", "ease_pop", "ease_lowrank"} <= families
    head_trials = [t for t in sel.trials if t.family != "als"]
    # EASE itself refuses a catalog above its ceiling: its head trials are wedlae's, which
    # (like ease_lowrank) restricts itself to the same head when refitted
    assert {t.algorithm for t in head_trials} <= {"wedlae", "ease_lowrank"}
    assert all(t.params["max_items"] == 50 for t in head_trials)
    # a site with more users than the Woodbury scoring takes keeps to ALS
    monkeypatch.setattr(selection_search, "HEAD_MAX_USERS", 100)
    sel = selection.select(X, T, dense_max_items=50)
    assert sel.algorithm == "als" and {r["family"] for r in sel.table()} == {"als"}
    # at the ceiling the dense families compete, fitted with the same ceiling
    sel = selection.select(X, T, dense_max_items=60)
    assert "ease" in {r["family"] for r in sel.table()}
    assert all(
        t.params["max_items"] == 60 for t in sel.trials if t.algorithm in ("ease", "rp3beta")
    )


def test_head_trials_score_what_their_refitted_models_serve() -> None:
    """Above the ceiling each head trial's figures are those of the registry's model rebuilt
    from its params and fitted on the same data: it restricts itself to the same popular head
    and never recommends the other items."""
    X, _ = _clustered(n_items=60, timed=False)
    queries, truth = X[:40], X[40:80]
    s = selection_search.Search(X, None, queries, truth, budget=60.0, dense_max_items=50)
    selection_search.head_families(s)
    head = engine.popular_head(X, 50)
    tail = np.setdiff1d(np.arange(60), head)
    checked = set()
    for family in ("ease", "ease_pop", "ease_lowrank"):
        best = s.best(family)
        assert best is not None, family
        served = engine.get_model(best.algorithm, **best.params).fit(X).score_users(queries)
        assert np.isneginf(served[:, tail]).all()
        ndcg, recall = selection_search.ranking_metrics(served, queries, truth)
        assert (ndcg, recall) == pytest.approx((best.ndcg, best.recall), abs=1e-6)
        checked.add(best.algorithm)
    assert checked == {"wedlae", "ease_lowrank"}


def test_als_family_walks_up_its_grid_on_bm25_and_scores_what_its_refit_serves(
    monkeypatch,
) -> None:
    """ALS trials run on BM25 confidences, up ALS_GRID until a setting does not beat the one
    before it; each trial's figures are those of the registry's ALS rebuilt from its params."""
    monkeypatch.setattr(selection_search, "ALS_MAX_DENSITY", 1.0)
    X, _ = _clustered(n_users=200, n_items=120, clusters=4, timed=False)
    queries, truth = X[:60], X[60:120]
    s = selection_search.Search(X, None, queries, truth, budget=60.0, dense_max_items=20_000)
    selection_search.als_family(s)
    trials = [t for t in s.trials if t.family == "als"]
    grid = list(selection_search.ALS_GRID)
    tried = [(t.params["factors"], t.params["regularization"]) for t in trials]
    assert tried == grid[: len(tried)] and len(tried) >= 2
    assert all(t.params["weighting"] == "bm25" for t in trials)
    for before, after in zip(trials, trials[1:-1], strict=False):
        assert after.ndcg > before.ndcg  # the walk went on past each of these
    if len(tried) < len(grid):
        assert trials[-1].ndcg <= max(t.ndcg for t in trials[:-1])  # and stopped here
    for t in trials:
        served = engine.get_model("als", **t.params).fit(X).score_users(queries)
        ndcg, recall = selection_search.ranking_metrics(served, queries, truth)
        assert (ndcg, recall) == pytest.approx((t.ndcg, t.recall), abs=1e-6)


def test_als_competes_below_the_ceiling_only_on_sparse_catalogs(monkeypatch) -> None:
    X, _ = _clustered(timed=False)  # 15 % dense
    s = selection_search.Search(X, None, X[:10], X[10:20], budget=60.0, dense_max_items=20_000)
    selection_search.als_family(s)
    assert not s.trials
    density = X.nnz / (X.shape[0] * X.shape[1])
    monkeypatch.setattr(selection_search, "ALS_MAX_DENSITY", density * 0.99)
    selection_search.als_family(s)
    assert not s.trials
    monkeypatch.setattr(selection_search, "ALS_MAX_DENSITY", density * 1.01)
    selection_search.als_family(s)
    assert s.trials and {t.family for t in s.trials} == {"als"}


# --------------------------------------------------------------------------- the retrain


@pytest.mark.django_db(transaction=False)
def test_an_auto_retrain_serves_the_winner_and_records_the_table(movielens_db, settings):
    from django.contrib.auth import get_user_model

    from recommender import selectors, services
    from recommender.models import ModelVersion

    settings.RECOMMENDER_MODEL = "auto"
    version = services.training_start()
    assert version.algorithm == selection.AUTO
    services.model_train(version_id=version.pk)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.ACTIVE
    assert version.algorithm in engine.MODEL_NAMES
    report = version.metrics["selection"]
    assert report["validation"] == "time" and report["table"]
    assert report["algorithm"] == version.algorithm
    model = engine.get_model(version.algorithm, **selection.engine_params(version.params))
    assert {**model.params, **version.params} == version.params
    # ml-latest-small's ratings: the value-weighted candidates compete (they win on its time
    # slice), and a value-weighted winner is recorded as such
    families = {row["family"] for row in report["table"]}
    assert {"edlae_values", "session_values"} <= families
    chosen = next(row for row in report["table"] if row["chosen"])
    assert ("values" in chosen["family"]) == (version.params.get("value_weight") == "log1p")
    from django.template.loader import render_to_string

    html = render_to_string(
        "recommender/partials/versions.html",
        {"active": version, "versions": [version], "plot": {"empty": True}},
    )
    assert f"How v{version.pk} was chosen" in html and report["chosen"] in html
    user = get_user_model().objects.get(username="ml_1")
    recs = selectors.recommendations_for_user(user=user, n=10)
    assert len(recs) == 10 and all(r.source == "cf" for r in recs[:5])


@pytest.mark.django_db(transaction=False)
def test_a_fixed_model_setting_wins_over_selection(db, settings):
    from recommender import services

    settings.RECOMMENDER_MODEL = "wedlae"
    version = services.training_start()
    assert version.algorithm == "wedlae" and version.params["lam"] == 20.0


def test_lowrank_family_scores_what_its_refitted_model_serves() -> None:
    """The ease_lowrank trials are scored as EASE's validation scores plus the low-rank term;
    the registry's model rebuilt from a trial's params scores the same (history items aside),
    and a plain select() lists the family."""
    X, _ = _clustered(timed=False)
    queries, truth = X[:40], X[40:80]
    s = selection_search.Search(X, None, queries, truth, budget=60.0, dense_max_items=20_000)
    selection_search.edlae_family(s, X.shape[1], 0.0, 0.0, "ease")
    selection_search.lowrank_family(s)
    trials = [t for t in s.trials if t.family == "ease_lowrank"]
    assert len(trials) == len(selection_search.LOWRANK_GRID)
    for t in trials:
        assert t.params["mu"] == pytest.approx(t.params["lam"] * selection_search.LOWRANK_MU, 1e-2)
    best = s.best("ease_lowrank")
    served = engine.get_model(best.algorithm, **best.params).fit(X).score_users(queries)
    seen = queries.toarray() > 0  # a history item's own entry ranks nothing
    for scores in (s.scores[best.label], s.rescore["ease_lowrank"][1](queries)):
        np.testing.assert_allclose(scores[~seen], served[~seen], atol=1e-3)
    families = {r["family"] for r in selection.select(X, None, budget_seconds=60).table()}
    assert "ease_lowrank" in families


def test_recency_trials_score_what_their_refitted_models_serve() -> None:
    """A family's best setting rescored with a recency weight (its scorer built once, then
    called per weight) scores what the version recorded for that trial serves: the model
    rebuilt from the trial's params, fitted on the same rows, scoring with the timestamps."""
    X, T = _clustered()
    X_fit, T_fit, users, truth = selection.validation_split(X, T, method="time")
    s = selection_search.Search(X_fit, T_fit, X_fit[users], truth, 60.0, 20_000)
    s.T_q = T_fit[users]
    selection_search.edlae_family(s, X.shape[1], 0.0, 0.0, "ease")
    selection_search.edlae_family(s, X.shape[1], 0.5, 0.1, "edlae")
    selection_search.session_family(s, s.best("edlae"))
    seen = s.q.toarray() > 0
    for family in ("ease", "edlae", "session"):
        trial, rescore = s.rescore[family]
        for r in selection_search.RECENCY_GRID:
            Q = engine.recency_history(s.q, s.T_q, r, selection_search.RECENCY_TAU)
            algorithm, params = selection_search.with_recency(trial, r)
            served = selection.VersionModel(algorithm, params).fit(X_fit, timestamps=T_fit)
            expected = served.score_users(s.q, s.T_q)
            got = rescore(Q)
            scale = np.abs(expected[~seen]).max()
            np.testing.assert_allclose(got[~seen] / scale, expected[~seen] / scale, atol=1e-4)


def test_lowrank_on_the_popularity_scaled_base_scores_what_its_refitted_model_serves() -> None:
    """The ease_pop_lowrank trials correct the popularity-scaled EASE's best setting (its
    ``lam`` and ``pop_exponent``); the registry's model rebuilt from a trial's params scores
    the same (history items aside), and a plain select() lists the family."""
    X, _ = _clustered(timed=False)
    queries, truth = X[:40], X[40:80]
    s = selection_search.Search(X, None, queries, truth, budget=60.0, dense_max_items=20_000)
    selection_search.edlae_family(
        s, X.shape[1], 0.0, 0.0, "ease_pop", selection_search.POP_EXPONENT
    )
    selection_search.lowrank_family(s, "ease_pop")
    trials = [t for t in s.trials if t.family == "ease_pop_lowrank"]
    assert len(trials) == len(selection_search.LOWRANK_GRID)
    base = s.rescore["ease_pop"][0]
    for t in trials:
        assert t.params["lam"] == base.params["lam"]
        assert t.params["pop_exponent"] == selection_search.POP_EXPONENT
    best = s.best("ease_pop_lowrank")
    served = engine.get_model(best.algorithm, **best.params).fit(X).score_users(queries)
    seen = queries.toarray() > 0
    for scores in (s.scores[best.label], s.rescore["ease_pop_lowrank"][1](queries)):
        np.testing.assert_allclose(scores[~seen], served[~seen], atol=1e-3)
    # select() tries it only where the correction of EASE beats EASE on the slice: not on
    # these one-cluster users, on users of eight small clusters
    families = {r["family"] for r in selection.select(X, None, budget_seconds=60).table()}
    assert "ease_lowrank" in families and "ease_pop_lowrank" not in families
    X8, _ = _clustered(n_users=300, n_items=200, clusters=8, per_user=10, timed=False)
    table = selection.select(X8, None, budget_seconds=60).table()
    best = {
        f: max(r["ndcg@10"] for r in table if r["family"] == f) for f in ("ease", "ease_lowrank")
    }
    assert best["ease_lowrank"] > best["ease"]
    assert "ease_pop_lowrank" in {r["family"] for r in table}
