"""The baseline the default is judged against: EASE at its best penalty on the test part.

Tuning EASE's ``lam`` on the test interactions themselves flatters the baseline (no model
selected on the training part can do better than an oracle choice), so a default that beats
it beats any EASE a site owner could have tuned."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .data import Interactions
from .metrics import evaluate

__all__ = ["ease_best_lambda"]


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
    from recommender.engine import get_model

    tried: dict[float, dict[str, Any]] = {}

    def run(lam: float) -> float:
        if lam not in tried:
            tried[lam] = evaluate(get_model("ease", lam=lam), train, test, genres=genres)
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
