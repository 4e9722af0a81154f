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

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

__all__ = [
    "METRIC_KEYS",
    "Interactions",
    "Split",
    "Scorer",
    "load_ratings_csv",
    "collapse_duplicates",
    "n_test_for",
    "split",
    "build_train_matrix",
    "build_timestamp_matrix",
    "evaluate",
    "evaluate_models",
    "gini",
    "format_rows",
]

MIN_INTERACTIONS_TO_TEST = 5
TEST_FRACTION = 0.2
RECALL_K = 20
NDCG_K = 10

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
        )

    @property
    def n_users(self) -> int:
        return len(np.unique(self.users))

    @property
    def n_items(self) -> int:
        return len(np.unique(self.items))


_HEADER = ("userid", "movieid", "rating", "timestamp")


def load_ratings_csv(path: str | os.PathLike[str]) -> Interactions:
    """Read a MovieLens ``ratings.csv`` (``userId,movieId,rating,timestamp``).

    One header row is required; CRLF or LF line endings and a UTF-8 BOM are accepted; blank
    lines are skipped. A malformed row raises ``ValueError("<path>:<line>: ...")`` with its
    1-based line number (the header is line 1).
    """
    path = Path(path)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        text = fh.read()
    lines = text.splitlines()
    if not lines:
        raise ValueError(f"{path}:1: empty file, expected header 'userId,movieId,rating,timestamp'")
    header = tuple(h.strip().lower() for h in lines[0].split(","))
    if header != _HEADER:
        raise ValueError(
            f"{path}:1: expected header 'userId,movieId,rating,timestamp', got {lines[0]!r}"
        )
    n = len(lines) - 1
    users = np.empty(n, dtype=np.int64)
    items = np.empty(n, dtype=np.int64)
    stamps = np.empty(n, dtype=np.int64)
    values = np.empty(n, dtype=np.float32)
    j = 0
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != 4:
            raise ValueError(
                f"{path}:{lineno}: expected 4 comma-separated fields "
                f"(userId,movieId,rating,timestamp), got {len(fields)}: {line!r}"
            )
        try:
            u = int(fields[0])
            i = int(fields[1])
            r = float(fields[2])
            t = int(fields[3])
        except ValueError:
            raise ValueError(
                f"{path}:{lineno}: userId, movieId and timestamp must be integers and rating "
                f"a number: {line!r}"
            ) from None
        if not math.isfinite(r):
            raise ValueError(f"{path}:{lineno}: rating must be a finite number: {line!r}")
        users[j], items[j], stamps[j], values[j] = u, i, t, r
        j += 1
    return Interactions(users[:j], items[:j], stamps[:j], values[:j])


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


# --------------------------------------------------------------------------- models


class Scorer(Protocol):
    """What evaluation needs from a model (``recommender.engine.Recommender`` satisfies it)."""

    def fit(self, X: sp.csr_matrix, progress: Callable[[float], None] | None = None) -> Any: ...

    def score_users(self, X_rows: sp.csr_matrix) -> np.ndarray: ...


ModelLike = Scorer | Callable[[], Scorer]


def _instantiate(model: ModelLike) -> Scorer:
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


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best columns per row, best first (ties: lower index first)."""
    k = min(k, scores.shape[1])
    # A stable sort: ties, at the cut too, go to the lower index whatever numpy's selection
    # algorithm does (argpartition picked a different subset of the items tied at the k-th
    # score from one numpy release to the next, and moved the popularity baseline by .001).
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def evaluate(
    model: ModelLike,
    train: Interactions,
    test: Interactions,
    *,
    batch_size: int = 1024,
    progress: Callable[[float], None] | None = None,
) -> dict[str, float | int]:
    """Fit ``model`` (an unfitted model or a zero-argument factory) on ``train`` and score
    it on ``test`` per the protocol. Returns the metric keys of :data:`METRIC_KEYS` except
    ``name``/``default``.
    """
    tm = build_train_matrix(train)
    X = tm.X
    n_items = X.shape[1]
    m = _instantiate(model)
    # models that declare ``uses_timestamps = True`` also get the aligned timestamp CSR
    T = build_timestamp_matrix(train, tm) if getattr(m, "uses_timestamps", False) else None
    t0 = time.perf_counter()
    if T is None:
        m.fit(X, progress=progress)
    else:
        m.fit(X, progress=progress, timestamps=T)
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
        if T is None:
            scores = m.score_users(X_rows)
        else:
            scores = m.score_users(X_rows, timestamps_rows=T[rows])
        scores = np.asarray(scores, dtype=np.float32)
        if scores.shape != (len(rows), n_items):
            raise ValueError(
                f"score_users returned shape {scores.shape}, expected {(len(rows), n_items)}"
            )
        scores = scores.copy()
        r_idx, c_idx = X_rows.nonzero()
        scores[r_idx, c_idx] = -np.inf  # exclude training items
        top = _top_k(scores, k)
        # a user with fewer than k candidates gets a shorter list: drop the masked items
        valid = np.isfinite(np.take_along_axis(scores, top, axis=1))
        hits = np.isin(rows.astype(np.int64)[:, None] * n_items + top, truth_keys) & valid
        recall_sum += float((hits.sum(axis=1) / np.minimum(k, nt)).sum())
        head = hits[:, :NDCG_K]  # fewer than 10 columns only if the catalog is that small
        dcg = (head * discounts[: head.shape[1]]).sum(axis=1)
        idcg = idcg_cum[np.minimum(NDCG_K, nt) - 1]
        ndcg_sum += float((dcg / idcg).sum())
        np.add.at(exposure, top[valid], 1)
        novelty_sum += float(pop_rank[top[valid]].sum())
        n_slots += int(valid.sum())

    n_users = len(tested)
    return {
        "recall@20": recall_sum / n_users if n_users else 0.0,
        "ndcg@10": ndcg_sum / n_users if n_users else 0.0,
        "coverage@20": float((exposure > 0).sum() / n_items) if n_items else 0.0,
        "novelty": novelty_sum / n_slots if n_slots else 0.0,
        "gini@20": gini(exposure),
        "fit_seconds": fit_seconds,
        "n_users_tested": int(n_users),
    }


def evaluate_models(
    models: Mapping[str, ModelLike] | Iterable[tuple[str, ModelLike]],
    train: Interactions,
    test: Interactions,
    *,
    default: str | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate several models side by side on the same split.

    ``models`` maps a display name to an unfitted model or a zero-argument factory (fresh
    state per run). ``default`` names the row flagged ``"default": True`` (typically
    ``recommender.engine.DEFAULT_MODEL``). Each row has exactly the keys of
    :data:`METRIC_KEYS`.
    """
    items = list(models.items()) if isinstance(models, Mapping) else list(models)
    rows: list[dict[str, Any]] = []
    for name, model in items:
        cb = None
        if progress is not None:
            cb = (lambda n: lambda f: progress(n, f))(name)  # noqa: B023 - bound per model
        metrics = evaluate(model, train, test, progress=cb)
        row = {"name": name, "default": name == default}
        row.update(metrics)
        rows.append({key: row[key] for key in METRIC_KEYS})
    return rows


def format_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of :func:`evaluate_models` rows (for commands and benchmarks)."""
    header = (
        f"{'model':<28}{'recall@20':>10}{'ndcg@10':>9}{'cov@20':>8}"
        f"{'novelty':>9}{'gini@20':>8}{'fit s':>8}{'users':>7}"
    )
    out = [header]
    for r in rows:
        name = ("* " if r["default"] else "  ") + str(r["name"])
        out.append(
            f"{name:<28}{r['recall@20']:>10.4f}{r['ndcg@10']:>9.4f}{r['coverage@20']:>8.3f}"
            f"{r['novelty']:>9.1f}{r['gini@20']:>8.3f}{r['fit_seconds']:>8.2f}"
            f"{r['n_users_tested']:>7d}"
        )
    return "\n".join(out)
