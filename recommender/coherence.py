"""Short histories: a genre-coherence term on the serving pool.

A model fitted on the site's users as a whole knows little of a user with five favourites;
their list drifts to the catalog's blockbusters. For such a user the candidates' normalised
scores get a bonus for the genres the history keeps returning to. The same function reranks
the pool in serving (``selectors.recommendations_for_user``) and in the few-shot evaluation
(``evaluation.metrics.evaluate``), so the offline figure measures what a new user is shown.

Pure numpy (no Django): the evaluation package imports it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["SERVING_POOL", "ShortHistory", "genre_match", "rerank"]

#: candidates scored before the policy (curation, filters, this term) reorders them: the
#: serving pool for a list of up to 20 (``max(60, 3 n)``), the pool the evaluation reranks
SERVING_POOL = 60


@dataclass(frozen=True)
class ShortHistory:
    """The term's strength (0: off) and the history length up to which it applies."""

    strength: float = 0.0
    max_history: int = 10

    def applies(self, history_length: int) -> bool:
        return self.strength > 0 and 0 < history_length <= self.max_history


def genre_match(
    candidate_genres: Sequence[Collection[str]], history_genres: Sequence[Collection[str]]
) -> np.ndarray:
    """Per candidate, in [0, 1]: the share of the history's most frequent genre count reached
    by the candidate's best genre. With five sci-fi favourites of which three are also action,
    a sci-fi film gets 1, a pure action film .6, a drama 0. Graded rather than "has the top
    genre": a history's genres are often tied (Action 5, Sci-Fi 5) and broad genres should not
    decide alone."""
    counts = Counter(g for genres in history_genres for g in set(genres))
    if not counts:
        return np.zeros(len(candidate_genres))
    top = max(counts.values())
    return np.array(
        [max((counts.get(g, 0) for g in genres), default=0) / top for genres in candidate_genres],
        dtype=np.float64,
    )


def rerank(
    scores: np.ndarray,
    candidate_genres: Sequence[Collection[str]],
    history_genres: Sequence[Collection[str]],
    strength: float,
) -> np.ndarray:
    """The candidates' scores normalised to the best one (as serving ranks them) plus
    ``strength`` x their :func:`genre_match`. ``strength`` is in units of the top score: .1
    lets an item in the history's main genre pass one scored up to 10 % higher."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0:
        return scores
    top = float(np.max(scores))
    normalised = scores / (top if top > 0 else 1.0)
    if strength <= 0:
        return normalised
    return normalised + strength * genre_match(candidate_genres, history_genres)
