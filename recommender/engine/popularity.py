"""Most-popular baseline (and the fallback for users with no usable history)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .base import Contribution, Progress, Recommender, Scored, top_n

__all__ = ["Popularity"]


class Popularity(Recommender):
    """Scores every item by its number of training interactions (same list for everyone)."""

    name = "popularity"
    kind = "other"

    def __init__(self) -> None:
        self._params = {}

    def _fit(self, X: sp.csr_matrix, progress: Progress) -> None:
        pass  # counts are kept by Recommender.fit as _item_popularity

    def score_users(self, X_rows: sp.csr_matrix) -> np.ndarray:
        self._require_fitted()
        assert self._item_popularity is not None
        return np.tile(self._item_popularity, (X_rows.shape[0], 1))

    def similar_items(self, item: int, n: int = 10) -> list[Scored]:
        """No notion of similarity: the most popular other items."""
        self._require_fitted()
        assert self._item_popularity is not None
        s = self._item_popularity.copy()
        s[item] = -np.inf
        return top_n(s, n)

    def explain(self, history: np.ndarray, item: int, top: int = 5) -> list[Contribution]:
        return []  # no history item contributes to a popularity score
