"""Building the training matrix ``X`` (users x items) from interaction rows.

The Django side reads (user id, item id) pairs from the database, calls
:func:`build_matrix` and keeps the returned id maps next to the model version: row ``r`` of
``X`` is ``user_ids[r]``, column ``c`` is ``item_ids[c]``, and every index the engine returns
(``Scored.item``, ``Contribution.item``, neighbour-table rows, factor rows) is such a column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["InteractionMatrix", "build_matrix", "positions_of"]


@dataclass(frozen=True)
class InteractionMatrix:
    X: sp.csr_matrix  # users x items, float32
    user_ids: np.ndarray  # external id of each row, sorted ascending
    item_ids: np.ndarray  # external id of each column, sorted ascending

    def user_index(self, external: np.ndarray | list[int]) -> np.ndarray:
        """Row index per external user id; -1 where the user is unknown."""
        return positions_of(self.user_ids, np.asarray(external))

    def item_index(self, external: np.ndarray | list[int]) -> np.ndarray:
        """Column index per external item id; -1 where the item is unknown."""
        return positions_of(self.item_ids, np.asarray(external))

    def history(self, external_items: np.ndarray | list[int]) -> np.ndarray:
        """Item indices of a history given by external ids (unknown items dropped)."""
        idx = self.item_index(external_items)
        return np.unique(idx[idx >= 0])


def positions_of(sorted_ids: np.ndarray, external: np.ndarray) -> np.ndarray:
    """The position of each of ``external`` in ``sorted_ids`` (ascending), -1 where absent."""
    external = np.asarray(external)
    if len(sorted_ids) == 0:
        return np.full(external.shape, -1, dtype=np.int64)
    pos = np.searchsorted(sorted_ids, external)
    pos_c = np.minimum(pos, len(sorted_ids) - 1)
    return np.where(sorted_ids[pos_c] == external, pos_c, -1).astype(np.int64)


def build_matrix(
    users: np.ndarray | list[int],
    items: np.ndarray | list[int],
    weights: np.ndarray | list[float] | None = None,
    *,
    item_ids: np.ndarray | None = None,
) -> InteractionMatrix:
    """CSR users x items from parallel arrays of external ids.

    Duplicate (user, item) pairs collapse to one entry (the largest weight). Without
    ``weights`` every interaction is 1.0 - what the models expect: they apply their own
    confidence weighting. ``item_ids`` fixes the column set (e.g. the whole catalog, so
    items nobody has interacted with yet still get a column); pairs with items outside it
    are dropped.
    """
    users = np.asarray(users)
    items = np.asarray(items)
    if users.shape != items.shape:
        raise ValueError(f"users and items differ in length: {users.shape} vs {items.shape}")
    w = (
        np.ones(len(users), dtype=np.float32)
        if weights is None
        else np.asarray(weights, dtype=np.float32)
    )
    if w.shape != users.shape:
        raise ValueError("weights must have one value per interaction")
    user_ids, rows = np.unique(users, return_inverse=True)
    if item_ids is None:
        item_ids, cols = np.unique(items, return_inverse=True)
    else:
        item_ids = np.unique(np.asarray(item_ids))
        cols = positions_of(item_ids, items)
        keep = cols >= 0
        rows, cols, w = rows[keep], cols[keep], w[keep]
    # collapse duplicates keeping the max weight
    order = np.lexsort((-w, cols, rows))
    rows, cols, w = rows[order], cols[order], w[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    X = sp.csr_matrix(
        (w[first], (rows[first], cols[first])),
        shape=(len(user_ids), len(item_ids)),
        dtype=np.float32,
    )
    return InteractionMatrix(X=X, user_ids=user_ids, item_ids=item_ids)
