"""A user's history as serving reads it: what they liked (most recent first), saw and dismissed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from catalog.models import Interaction

from .engine.temporal import recency_weights
from .engine.values import row_value_weights
from .models import ModelVersion

# A rating below this is a signal the user did not enjoy the item: it is still "seen" (never
# recommended again) but it does not pull similar items up.
LIKED_RATING = 3.0


@dataclass
class History:
    liked: list[int]  # positive items, most recent first (ratings >= LIKED_RATING and likes)
    seen: set[int]  # everything rated or liked (never recommended again)
    dismissed: set[int]
    weights: dict[int, float]  # per liked item: how much it counts (value and recency weights)
    # per positive item with a value (as training reads them: every rating, whatever it is):
    # its value; a value-weighted version's weights are normalised over these
    values: dict[int, float] = field(default_factory=dict)

    @property
    def excluded(self) -> set[int]:
        return self.seen | self.dismissed

    @classmethod
    def of_liked(cls, liked: list[int]) -> History:
        """A history of these favourites only (nothing seen or dismissed, every weight 1)."""
        return cls(liked=liked, seen=set(), dismissed=set(), weights={})


# plain strings: comparing each row's kind with the enum members cost a third of the loop
_DISMISS = str(Interaction.Kind.DISMISS.value)
_LIKE = str(Interaction.Kind.LIKE.value)
_SAVE = str(Interaction.Kind.SAVE.value)
_RATING = str(Interaction.Kind.RATING.value)


def history_from_rows(rows: Iterable[tuple[int, str, float | None]]) -> History:
    """The history from ``history_read.HISTORY_SQL``'s rows (most recent first).

    A like and a saved item ("watch later": the user wants it, so it pulls similar items up
    like a like, and is not recommended again since it is on the user's list already) are
    favourites, a rating of LIKED_RATING or more is one; every one of them is seen. A
    positive row's value (a rating's) counts as training reads the item: the largest value of
    its rows (an item without one, a like, weighs 1 and is not in the mean: engine.values).
    Views count for nothing here. The branches go by how common each kind is: this loop runs
    over every row of a long history on each list."""
    liked: list[int] = []
    seen: set[int] = set()
    dismissed: set[int] = set()
    weights: dict[int, float] = {}
    values: dict[int, float] = {}
    for item_id, kind, value in rows:
        if kind == _LIKE or kind == _SAVE:
            seen.add(item_id)
            if value is not None and kind == _LIKE:
                old = values.get(item_id)
                if old is None or value > old:
                    values[item_id] = float(value)
            if item_id not in weights:
                liked.append(item_id)
                weights[item_id] = 1.0
        elif kind == _RATING:
            seen.add(item_id)
            if value is not None:
                old = values.get(item_id)
                if old is None or value > old:
                    values[item_id] = float(value)
                if value >= LIKED_RATING and item_id not in weights:
                    liked.append(item_id)
                    weights[item_id] = 1.0
        elif kind == _DISMISS:
            dismissed.add(item_id)
    if dismissed:  # a dismissal wins over an old rating of the same item
        liked = [i for i in liked if i not in dismissed]
        weights = dict.fromkeys(liked, 1.0)
    return History(liked=liked, seen=seen, dismissed=dismissed, weights=weights, values=values)


def history_for_version(history: History, version: ModelVersion | None) -> History:
    """``history`` weighted as ``version`` scores it, with the engine's own weights, so serving
    scores what the model was fitted and evaluated for: a value-weighted version
    (``value_weight``) weighs each favourite by its value over the user's positive
    interactions (``engine.values``), and models with a ``recency`` parameter weigh the latest
    favourites higher (``engine.temporal``), the two multiplied."""
    params = (version.params if version is not None else None) or {}
    recency = float(params.get("recency") or 0.0)
    kind = params.get("value_weight")
    if (not recency and not kind) or not history.liked:
        return history
    weights = np.ones(len(history.liked), dtype=np.float32)
    if kind:
        items = list(history.values)
        values = np.array([history.values[i] for i in items], dtype=np.float64)
        by_item = dict(zip(items, row_value_weights(values, kind).tolist(), strict=True))
        weights *= np.array([by_item.get(i, 1.0) for i in history.liked], dtype=np.float32)
    if recency:
        tau = float(params.get("recency_tau") or 10.0)
        # ``liked`` is already most recent first: its negated positions are its time order
        n = len(history.liked)
        weights *= recency_weights(
            np.asarray(history.liked, dtype=np.int64), -np.arange(n, dtype=np.float64), recency, tau
        )
    return replace(history, weights=dict(zip(history.liked, weights.tolist(), strict=True)))
