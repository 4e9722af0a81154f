"""Scoring a model on a split: the protocol's metrics (``recall@20``, ``ndcg@10``, coverage,
novelty, exposure Gini, fit time) and the side-by-side table of several models."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

from recommender import coherence
from recommender.engine import top_k

from .data import (
    NDCG_K,
    RECALL_K,
    Interactions,
    build_timestamp_matrix,
    build_train_matrix,
    build_value_matrix,
)

__all__ = [
    "METRIC_KEYS",
    "Scorer",
    "ModelLike",
    "evaluate",
    "evaluate_models",
    "gini",
    "format_rows",
    "instantiate",
    "top_k",
]

#: Keys of every row returned by :func:`evaluate_models` (in this order).
METRIC_KEYS: tuple[str, ...] = (
    "name",
    "default",
    "recall@20",
    "ndcg@10",
    "coverage@20",
    "novelty",
    "gini@20",
    "fit_seconds",
    "n_users_tested",
)


# --------------------------------------------------------------------------- models


class Scorer(Protocol):
    """What evaluation needs from a model (``recommender.engine.Recommender`` satisfies it)."""

    def fit(self, X: sp.csr_matrix, progress: Callable[[float], None] | None = None) -> Any: ...

    def score_users(self, X_rows: sp.csr_matrix) -> np.ndarray: ...


ModelLike = Scorer | Callable[[], Scorer]


def instantiate(model: ModelLike) -> Scorer:
    if not isinstance(model, type) and hasattr(model, "fit") and hasattr(model, "score_users"):
        return model  # type: ignore[return-value]
    if callable(model):
        made = model()
        if not (hasattr(made, "fit") and hasattr(made, "score_users")):
            raise TypeError(f"model factory returned {type(made).__name__}, not a model")
        return made
    raise TypeError(f"expected a model or a zero-argument factory, got {type(model).__name__}")


# --------------------------------------------------------------------------- metrics


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = equal; 0 for an all-zero vector)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    total = x.sum()
    if n == 0 or total == 0:
        return 0.0
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float(((2 * ranks - n - 1) * x).sum() / (n * total))


def evaluate(
    model: ModelLike,
    train: Interactions,
    test: Interactions,
    *,
    batch_size: int = 1024,
    progress: Callable[[float], None] | None = None,
    genres: Mapping[int, Sequence[str]] | None = None,
    short_history: coherence.ShortHistory | None = None,
) -> dict[str, float | int]:
    """Fit ``model`` (an unfitted model or a zero-argument factory) on ``train`` and score
    it on ``test`` per the protocol. Returns the metric keys of :data:`METRIC_KEYS` except
    ``name``/``default``; with ``genres`` (external item id -> its genres) also ``genre@10``:
    the share of each user's top 10 that shares a genre with the user's training items, and
    ``topgenre@10``: the share that has their most frequent genre.

    With ``genres`` and ``short_history``, users with a short training history get their
    pool of :data:`coherence.SERVING_POOL` reranked by :func:`coherence.rerank`, as serving
    ranks a short history's list.
    """
    tm = build_train_matrix(train)
    X = tm.X
    n_items = X.shape[1]
    G = _genre_matrix(tm.item_ids, genres) if genres is not None else None
    genre_sum = top_genre_sum = 0.0
    m = instantiate(model)
    # models that declare ``uses_timestamps = True`` also get the aligned timestamp CSR
    T = build_timestamp_matrix(train, tm) if getattr(m, "uses_timestamps", False) else None
    # and models that declare ``uses_values = True`` the values (they may weight their input
    # by them; the truth below counts every held-out interaction as one positive)
    V = build_value_matrix(train, tm) if getattr(m, "uses_values", False) else None
    fit_extra: dict[str, sp.csr_matrix] = {}
    if T is not None:
        fit_extra["timestamps"] = T
    if V is not None:
        fit_extra["values"] = V
    t0 = time.perf_counter()
    m.fit(X, progress=progress, **fit_extra)
    fit_seconds = time.perf_counter() - t0

    # held-out items per tested user; items unseen in training stay in n_test but can't hit
    test_rows = tm.user_index(test.users)
    if np.any(test_rows < 0):
        raise ValueError("a test user has no training interactions; not a protocol split")
    test_cols = tm.item_index(test.items)
    tested = np.unique(test_rows)
    n_test = np.bincount(test_rows, minlength=X.shape[0])[tested]
    known = test_cols >= 0
    truth_keys = np.unique(test_rows[known].astype(np.int64) * n_items + test_cols[known])

    k = RECALL_K
    discounts = 1.0 / np.log2(np.arange(2, NDCG_K + 2))
    idcg_cum = np.cumsum(discounts)
    exposure = np.zeros(n_items, dtype=np.int64)
    recall_sum = 0.0
    ndcg_sum = 0.0
    counts = np.asarray(X.sum(axis=0)).ravel()
    pop_rank = rankdata(-counts, method="average")
    novelty_sum = 0.0
    n_slots = 0

    for start in range(0, len(tested), batch_size):
        rows = tested[start : start + batch_size]
        nt = n_test[start : start + batch_size]
        X_rows = X[rows]
        rows_extra: dict[str, sp.csr_matrix] = {}
        if T is not None:
            rows_extra["timestamps_rows"] = T[rows]
        if V is not None:
            rows_extra["values_rows"] = V[rows]
        scores = m.score_users(X_rows, **rows_extra)
        scores = np.asarray(scores, dtype=np.float32)
        if scores.shape != (len(rows), n_items):
            raise ValueError(
                f"score_users returned shape {scores.shape}, expected {(len(rows), n_items)}"
            )
        scores = scores.copy()
        r_idx, c_idx = X_rows.nonzero()
        scores[r_idx, c_idx] = -np.inf  # exclude training items
        # ties, at the cut too, go to the lower index whatever numpy's selection algorithm does
        # (argpartition picked a different subset of the items tied at the k-th score from one
        # numpy release to the next, and moved the popularity baseline by .001): engine.top_k
        # gives the stable sort's result without sorting whole rows
        top = top_k(scores, k)
        if short_history is not None and genres is not None and short_history.strength > 0:
            top = _short_history_rerank(scores, top, X_rows, tm.item_ids, genres, short_history)
        # a user with fewer than k candidates gets a shorter list: drop the masked items
        valid = np.isfinite(np.take_along_axis(scores, top, axis=1))
        hits = np.isin(rows.astype(np.int64)[:, None] * n_items + top, truth_keys) & valid
        recall_sum += float((hits.sum(axis=1) / np.minimum(k, nt)).sum())
        head = hits[:, :NDCG_K]  # fewer than 10 columns only if the catalog is that small
        dcg = (head * discounts[: head.shape[1]]).sum(axis=1)
        idcg = idcg_cum[np.minimum(NDCG_K, nt) - 1]
        ndcg_sum += float((dcg / idcg).sum())
        np.add.at(exposure, top[valid], 1)
        if G is not None:
            share, dominant = _genre_share(G, X_rows, top[:, :NDCG_K], valid[:, :NDCG_K])
            genre_sum += share
            top_genre_sum += dominant
        novelty_sum += float(pop_rank[top[valid]].sum())
        n_slots += int(valid.sum())

    n_users = len(tested)
    extra = {}
    if G is not None:
        extra["genre@10"] = genre_sum / n_users if n_users else 0.0
        extra["topgenre@10"] = top_genre_sum / n_users if n_users else 0.0
    return {
        "recall@20": recall_sum / n_users if n_users else 0.0,
        "ndcg@10": ndcg_sum / n_users if n_users else 0.0,
        "coverage@20": float((exposure > 0).sum() / n_items) if n_items else 0.0,
        "novelty": novelty_sum / n_slots if n_slots else 0.0,
        "gini@20": gini(exposure),
        "fit_seconds": fit_seconds,
        "n_users_tested": int(n_users),
        **extra,
    }


def _short_history_rerank(
    scores: np.ndarray,
    top: np.ndarray,
    X_rows: sp.csr_matrix,
    item_ids: np.ndarray,
    genres: Mapping[int, Sequence[str]],
    policy: coherence.ShortHistory,
) -> np.ndarray:
    """``top`` with the rows of short histories taken from their serving pool reranked by
    :func:`coherence.rerank` (the function serving runs on its pool)."""
    lengths = np.diff(X_rows.indptr)
    short = [u for u in range(len(top)) if policy.applies(int(lengths[u]))]
    if not short:
        return top
    pool = top_k(scores[short], coherence.SERVING_POOL)
    out = top.copy()
    for row, u in enumerate(short):
        cand = pool[row][np.isfinite(scores[u, pool[row]])]
        history = item_ids[X_rows.indices[X_rows.indptr[u] : X_rows.indptr[u + 1]]]
        adjusted = coherence.rerank(
            scores[u, cand],
            [genres.get(i, ()) for i in item_ids[cand].tolist()],
            [genres.get(i, ()) for i in history.tolist()],
            policy.strength,
        )
        best = cand[np.argsort(-adjusted, kind="stable")][: top.shape[1]]
        # a catalog with fewer candidates than the list: the masked items keep the tail
        out[u] = np.concatenate([best, top[u][~np.isin(top[u], best)]])[: top.shape[1]]
    return out


def _genre_matrix(item_ids: np.ndarray, genres: Mapping[int, Sequence[str]]) -> sp.csr_matrix:
    """Binary items x genres CSR for the training columns (items without genres: empty)."""
    names: dict[str, int] = {}
    rows, cols = [], []
    for c, item in enumerate(item_ids.tolist()):
        for g in genres.get(item, ()):
            rows.append(c)
            cols.append(names.setdefault(g, len(names)))
    return sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)),
        shape=(len(item_ids), max(1, len(names))),
    )


def _genre_share(
    G: sp.csr_matrix, X_rows: sp.csr_matrix, top: np.ndarray, valid: np.ndarray
) -> tuple[float, float]:
    """Sums over users of the share of their (valid) top items that share a genre with their
    history, and of the share that has the history's most frequent genre (broad genres such
    as Drama make the first one near 1 for any list; the second tells taste from
    blockbusters)."""
    counts = np.asarray((X_rows @ G).toarray(), dtype=np.float32)  # users x genres
    profile = (counts > 0).astype(np.float32)
    shares = np.zeros(len(top))
    dominant = np.zeros(len(top))
    for u in range(len(top)):
        items = top[u][valid[u]]
        if len(items):
            rows = G[items]
            shares[u] = float(np.mean(np.asarray(rows @ profile[u]).ravel() > 0))
            dominant[u] = float(np.mean(rows[:, int(np.argmax(counts[u]))].toarray() > 0))
    return float(shares.sum()), float(dominant.sum())


def evaluate_models(
    models: Mapping[str, ModelLike] | Iterable[tuple[str, ModelLike]],
    train: Interactions,
    test: Interactions,
    *,
    default: str | None = None,
    progress: Callable[[str, float], None] | None = None,
    genres: Mapping[int, Sequence[str]] | None = None,
    short_history: coherence.ShortHistory | None = None,
    skipped: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate several models side by side on the same split.

    ``models`` maps a display name to an unfitted model or a zero-argument factory (fresh
    state per run). ``default`` names the row flagged ``"default": True`` (typically
    ``recommender.engine.DEFAULT_MODEL``). Each row has exactly the keys of
    :data:`METRIC_KEYS`. With ``skipped``, a model that refuses the catalog (a dense model
    above its ceiling: ``CatalogTooLargeError``) gets no row; its name and reason go there.
    """
    from recommender.engine import CatalogTooLargeError

    items = list(models.items()) if isinstance(models, Mapping) else list(models)
    rows: list[dict[str, Any]] = []
    for name, model in items:
        cb = None
        if progress is not None:
            cb = (lambda n: lambda f: progress(n, f))(name)  # noqa: B023 - bound per model
        try:
            metrics = evaluate(
                model, train, test, progress=cb, genres=genres, short_history=short_history
            )
        except CatalogTooLargeError as exc:
            if skipped is None:
                raise
            skipped[name] = str(exc)
            continue
        row = {"name": name, "default": name == default}
        row.update(metrics)
        keys = METRIC_KEYS + (("genre@10", "topgenre@10") if genres is not None else ())
        rows.append({key: row[key] for key in keys})
    return rows


def format_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of :func:`evaluate_models` rows (for commands and benchmarks)."""
    header = (
        f"{'model':<34}{'recall@20':>10}{'ndcg@10':>9}{'cov@20':>8}"
        f"{'novelty':>9}{'gini@20':>8}{'fit s':>8}{'users':>7}"
    )
    with_genre = any("genre@10" in r for r in rows)
    if with_genre:
        header += f"{'genre@10':>9}{'top-g@10':>9}"
    out = [header]
    for r in rows:
        name = ("* " if r["default"] else "  ") + str(r["name"])
        out.append(
            f"{name:<34}{r['recall@20']:>10.4f}{r['ndcg@10']:>9.4f}{r['coverage@20']:>8.3f}"
            f"{r['novelty']:>9.1f}{r['gini@20']:>8.3f}{r['fit_seconds']:>8.2f}"
            f"{r['n_users_tested']:>7d}"
            + (
                f"{r.get('genre@10', float('nan')):>9.3f}{r.get('topgenre@10', float('nan')):>9.3f}"
                if with_genre
                else ""
            )
        )
    return "\n".join(out)
