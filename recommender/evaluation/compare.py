"""The baseline the default is judged against: EASE at its best penalty on the test part.

Tuning EASE's ``lam`` on the test interactions themselves flatters the baseline (no model
selected on the training part can do better than an oracle choice), so a default that beats
it beats any EASE a site owner could have tuned."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from .data import Interactions
from .metrics import evaluate

__all__ = ["QueryEASE", "ease_best_lambda", "ease_for"]


class QueryEASE:
    """EASE as published, scored without its items x items matrix (``engine.edlae_query_scorer``
    by Woodbury): the baseline on a catalog above the dense models' ceiling, where users x items
    is within that ceiling squared (its users x items factor has that size). Its scores are the dense EASE's (to float32 rounding)."""

    name = "ease"

    def __init__(self, lam: float = 300.0) -> None:
        self.params = {"lam": lam}
        self._score: Callable[[sp.csr_matrix], np.ndarray] | None = None

    def fit(self, X: sp.csr_matrix, progress: Callable[[float], None] | None = None) -> QueryEASE:
        from recommender.engine import edlae_query_scorer

        self._score = edlae_query_scorer(X, lam=self.params["lam"])
        if progress is not None:
            progress(1.0)
        return self

    def score_users(self, X_rows: sp.csr_matrix) -> np.ndarray:
        if self._score is None:
            from recommender.engine import NotFittedError

            raise NotFittedError("QueryEASE is not fitted")
        return self._score(X_rows)


def ease_for(train: Interactions, ceiling: int | None = None) -> Callable[[float], Any]:
    """EASE at a given ``lam`` for this training part: the dense model within ``ceiling`` items
    (default: the dense model's own ``max_items``), else :class:`QueryEASE` while its users x
    items pieces fit in what the dense model may hold (``ceiling`` squared). A larger catalog
    raises ``CatalogTooLargeError``: EASE would need a dense matrix beyond the ceiling either
    way."""
    from recommender.engine import CatalogTooLargeError, get_model

    ceiling = int(get_model("ease").params["max_items"]) if ceiling is None else int(ceiling)
    users, items = train.n_users, train.n_items
    if items <= ceiling:
        return lambda lam: get_model("ease", lam=lam)
    if users * items <= ceiling**2:
        return QueryEASE
    raise CatalogTooLargeError(
        f"EASE is not computed: {items} items exceed the dense ceiling of {ceiling}, and "
        f"{users} users x {items} items exceed its {ceiling} x {ceiling} in memory"
    )


def ease_best_lambda(
    train: Interactions,
    test: Interactions,
    *,
    start: float = 300.0,
    step: float = 2.0,
    max_fits: int = 8,
    genres: Mapping[int, Sequence[str]] | None = None,
) -> tuple[float, dict[str, Any], dict[float, float]]:
    """(best lam, its metrics, NDCG@10 per lam tried): ``lam`` walked from ``start`` by
    factors of ``step`` in the direction that improves NDCG@10 until it stops improving."""
    make = ease_for(train)
    tried: dict[float, dict[str, Any]] = {}

    def run(lam: float) -> float:
        if lam not in tried:
            tried[lam] = evaluate(make(lam), train, test, genres=genres)
        return float(tried[lam]["ndcg@10"])

    best_lam, best = start, run(start)
    for factor in (step, 1.0 / step):
        lam = best_lam
        while len(tried) < max_fits:
            lam = round(lam * factor, 3)
            score = run(lam)
            if score <= best:
                break
            best_lam, best = lam, score
        if best_lam != start:
            break
    return best_lam, tried[best_lam], {k: float(v["ndcg@10"]) for k, v in sorted(tried.items())}
