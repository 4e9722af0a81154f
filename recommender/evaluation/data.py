"""Offline evaluation protocol (``/work/shared/docs/EVALUATION.md``), implemented exactly.

Pure Python (numpy + scipy): no Django import, so a management command, a Celery task and
``benchmarks/`` can all use it.

Protocol, with every choice the document leaves open made explicit:

1. Implicit feedback: every rating, whatever its value, is one positive interaction.
   Duplicate ``(user, item)`` pairs collapse to one row, keeping the row with the latest
   timestamp (and its value); on equal timestamps the row that comes last in the input wins.
2. Users with fewer than 5 (distinct) interactions stay in training and are never tested.
3. Every other user holds out ``n_test = max(1, round(0.2 * n))`` interactions.
   *Rounding*: ``0.2 * n`` is never exactly half-way for an integer ``n`` (that would need
   ``n = 5k + 2.5``), so banker's rounding (Python ``round``/``np.round``) and round-half-up
   give the same ``n_test`` for every ``n``; we use Python's ``round`` (see ``n_test_for``).
   Each user's interactions are first put in chronological order: by timestamp, ties broken
   by ascending item id (the larger item id counts as later).
   - ``random``: one ``numpy.random.default_rng(seed)`` for the whole split; users are
     visited in ascending user-id order and ``rng.permutation(n)[:n_test]`` picks the
     held-out positions in the user's chronological list. (This reading was chosen because it
     reproduces the reference figures to the published digits; ``rng.choice(n, n_test,
     replace=False)`` or item-id order give other, equally valid-looking subsets whose
     numbers differ by up to 0.01, e.g. EASE NDCG@10 0.373 instead of 0.364.)
   - ``time``: the last ``n_test`` of that chronological list.
4. Candidates are the items that appear in training; each user's training items are
   excluded. Held-out items that never occur in training cannot be hit, but still count in
   the ``min(20, n_test)`` denominator.
5. Metrics, averaged over tested users (``k`` = 20 for recall/coverage/gini, 10 for NDCG):
   - ``recall@20`` = hits in top 20 / ``min(20, n_test)``
   - ``ndcg@10``: binary gains, ``DCG = sum(1 / log2(rank + 1))`` over hits at 1-based ranks,
     ``IDCG`` = the same sum over ranks ``1..min(10, n_test)``.
   - ``coverage@20``: distinct items in anyone's top 20 / number of candidate items.
   - ``novelty``: mean popularity rank of the recommended items over all (user, slot) pairs of
     the top-20 lists. Popularity rank 1 = the item with most training interactions; ties get
     the average of their ranks (``scipy.stats.rankdata(-count, "average")``). Higher = more
     novel (less mainstream).
   - ``gini@20``: Gini coefficient of the exposure counts (how many top-20 lists contain
     the item) over *all* candidate items, unexposed ones included (0 = perfectly even,
     -> 1 = everything goes to one item).
   - ``fit_seconds``: wall-clock time of ``model.fit`` (matrix building not included).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

__all__ = [
    "Interactions",
    "Split",
    "TrainMatrix",
    "collapse_duplicates",
    "n_test_for",
    "split",
    "build_train_matrix",
    "build_timestamp_matrix",
    "MIN_INTERACTIONS_TO_TEST",
    "TEST_FRACTION",
    "RECALL_K",
    "NDCG_K",
]

MIN_INTERACTIONS_TO_TEST = 5
TEST_FRACTION = 0.2
RECALL_K = 20
NDCG_K = 10


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Interactions:
    """A bag of (user, item, timestamp, value) rows as parallel numpy arrays.

    ``users`` and ``items`` hold the *external* ids as given (MovieLens userId / movieId).
    """

    users: np.ndarray  # int64
    items: np.ndarray  # int64
    timestamps: np.ndarray  # int64 (seconds)
    values: np.ndarray  # float32 (the rating; unused by the implicit-feedback protocol)
    # a file whose item ids are not all integers: the ids, ``items`` being positions in it
    item_labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.users)
        for name in ("items", "timestamps", "values"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"Interactions.{name} has {len(getattr(self, name))} rows, users has {n}"
                )

    def __len__(self) -> int:
        return len(self.users)

    def take(self, index: np.ndarray) -> Interactions:
        return Interactions(
            users=self.users[index],
            items=self.items[index],
            timestamps=self.timestamps[index],
            values=self.values[index],
            item_labels=self.item_labels,
        )

    @property
    def n_users(self) -> int:
        return len(np.unique(self.users))

    @property
    def n_items(self) -> int:
        return len(np.unique(self.items))

    @property
    def has_timestamps(self) -> bool:
        """False when every timestamp is equal (a file without them, or a constant column):
        no time order to split by or to learn sessions from."""
        return len(self.timestamps) > 1 and bool(np.any(self.timestamps != self.timestamps[0]))


def collapse_duplicates(interactions: Interactions) -> Interactions:
    """One row per (user, item): the latest timestamp wins (the later row on a tie).

    The result is sorted by (user, item).
    """
    n = len(interactions)
    if n == 0:
        return interactions
    # lexsort: last key is primary. Order by user, item, timestamp, input position.
    order = np.lexsort(
        (np.arange(n), interactions.timestamps, interactions.items, interactions.users)
    )
    u = interactions.users[order]
    i = interactions.items[order]
    last = np.ones(n, dtype=bool)
    last[:-1] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    return interactions.take(order[last])


def n_test_for(n: int) -> int:
    """Held-out count for a user with ``n`` interactions (0 if the user is not tested)."""
    if n < MIN_INTERACTIONS_TO_TEST:
        return 0
    return max(1, int(round(TEST_FRACTION * n)))


@dataclass(frozen=True)
class Split:
    train: Interactions
    test: Interactions
    method: str
    seed: int | None

    def __iter__(self):  # allows ``train, test = split(...)``
        yield self.train
        yield self.test


def split(
    interactions: Interactions,
    method: Literal["random", "time"] = "random",
    seed: int = 0,
) -> Split:
    """Split into train/test per the protocol (see the module docstring for tie rules)."""
    if method not in ("random", "time"):
        raise ValueError(f"split method must be 'random' or 'time', got {method!r}")
    data = collapse_duplicates(interactions)  # sorted by (user, item)
    n = len(data)
    is_test = np.zeros(n, dtype=bool)
    if n:
        starts = np.flatnonzero(np.r_[True, data.users[1:] != data.users[:-1]])
        ends = np.r_[starts[1:], n]
        rng = np.random.default_rng(seed) if method == "random" else None
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            k = n_test_for(e - s)
            if k == 0:
                continue
            # rows s..e are sorted by item id; a stable sort by timestamp keeps item order on
            # ties, giving the chronological order (larger item id later on equal time).
            chrono = np.argsort(data.timestamps[s:e], kind="stable")
            if rng is not None:
                picked = chrono[rng.permutation(e - s)[:k]]
            else:
                picked = chrono[-k:]
            is_test[s + picked] = True
    return Split(
        train=data.take(~is_test),
        test=data.take(is_test),
        method=method,
        seed=seed if method == "random" else None,
    )


# --------------------------------------------------------------------------- matrices


@dataclass(frozen=True)
class TrainMatrix:
    """Training interactions as a users x items CSR matrix of 1.0 plus the id maps."""

    X: sp.csr_matrix
    user_ids: np.ndarray  # external id of each row (sorted)
    item_ids: np.ndarray  # external id of each column (sorted)

    def user_index(self, external: np.ndarray) -> np.ndarray:
        """Row index of each external user id (-1 where unknown)."""
        return _lookup(self.user_ids, external)

    def item_index(self, external: np.ndarray) -> np.ndarray:
        """Column index of each external item id (-1 where unknown)."""
        return _lookup(self.item_ids, external)


def _lookup(sorted_ids: np.ndarray, external: np.ndarray) -> np.ndarray:
    external = np.asarray(external)
    pos = np.searchsorted(sorted_ids, external)
    pos_c = np.minimum(pos, max(len(sorted_ids) - 1, 0))
    ok = (
        (pos < len(sorted_ids)) & (sorted_ids[pos_c] == external)
        if len(sorted_ids)
        else np.zeros(external.shape, bool)
    )
    return np.where(ok, pos_c, -1)


def build_train_matrix(train: Interactions) -> TrainMatrix:
    """Binary float32 CSR (users x items) of the (deduplicated) training interactions."""
    user_ids, rows = np.unique(train.users, return_inverse=True)
    item_ids, cols = np.unique(train.items, return_inverse=True)
    X = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)),
        shape=(len(user_ids), len(item_ids)),
        dtype=np.float32,
    )
    X.sum_duplicates()
    X.data[:] = 1.0
    return TrainMatrix(X=X, user_ids=user_ids, item_ids=item_ids)


def build_timestamp_matrix(train: Interactions, tm: TrainMatrix) -> sp.csr_matrix:
    """float64 CSR with exactly the sparsity of ``tm.X``: the (latest) timestamp, in
    seconds, of each training interaction. ``train`` must be deduplicated (as
    :func:`split` returns it). Explicit zeros are kept, so a timestamp of 0 is not lost."""
    rows = tm.user_index(train.users)
    cols = tm.item_index(train.items)
    T = sp.coo_matrix((train.timestamps.astype(np.float64), (rows, cols)), shape=tm.X.shape).tocsr()
    # duplicates (if any) were summed: keep the latest stamp instead
    if T.nnz != tm.X.nnz:
        order = np.lexsort((train.timestamps, cols, rows))
        r, c, t = rows[order], cols[order], train.timestamps[order]
        last = np.r_[(r[1:] != r[:-1]) | (c[1:] != c[:-1]), True]
        T = sp.csr_matrix((t[last].astype(np.float64), (r[last], c[last])), shape=tm.X.shape)
    T.sort_indices()
    return T


def build_value_matrix(train: Interactions, tm: TrainMatrix) -> sp.csr_matrix:
    """float64 CSR with exactly the sparsity of ``tm.X``: each training interaction's value
    (NaN where it has none: a like). ``train`` must be deduplicated (as :func:`split` returns
    it). What a value-weighted model reads (``engine.values``); the protocol's truth never does."""
    rows = tm.user_index(train.users)
    cols = tm.item_index(train.items)
    order = np.lexsort((cols, rows))
    r, c = rows[order], cols[order]
    if len(r) != tm.X.nnz or (len(r) > 1 and not np.all((r[1:] != r[:-1]) | (c[1:] != c[:-1]))):
        raise ValueError("build_value_matrix needs one row per (user, item)")
    V = sp.csr_matrix(
        (
            train.values[order].astype(np.float64),
            c,
            np.searchsorted(r, np.arange(tm.X.shape[0] + 1)),
        ),
        shape=tm.X.shape,
    )
    return V
