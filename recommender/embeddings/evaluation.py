"""Cold-start evaluation protocol: how well brand-new items reach the right users.

Pure numpy (no Django), like ``recommender.evaluation``:

1. Implicit feedback, duplicates collapsed (``evaluation.collapse_duplicates``).
2. Hold out 10% of the *items* entirely: ``numpy.random.default_rng(seed).permutation`` of the
   sorted distinct item ids, the first ``round(0.1 * n_items)`` are cold. All their interactions
   are test rows; every other interaction is training.
3. Tested users: those with at least one test row and at least one training row (a history).
4. Each tested user ranks the *cold items* (the question a cold-start recommender answers:
   which of the new items to show whom). ``recall@20`` = hits in the top 20 /
   ``min(20, n_test)``, averaged over tested users; ``ndcg@10`` with binary gains as in the main
   protocol.
5. Scorers:
   - ``random``: a uniform random order per user (seeded).
   - ``popularity (oracle)``: the cold items by how many test users interacted with them. It
     looks into the future (a cold item has no training interactions, so real popularity
     cannot rank it); it is the ceiling of any non-personalised order.
   - ``hybrid (text)``: what serving does (``selectors.cold_items_for_history``): each cold
     item's score is the mean of its two best cosine similarities to the user's liked training
     items (the 50 most recent rated >= 3.0; all recent items if none), in the embedding space
     of the items' text. Items without a vector score -inf (never recommended).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..evaluation import NDCG_K, RECALL_K, Interactions, collapse_duplicates

COLD_FRACTION = 0.1
LIKED_RATING = 3.0
HISTORY_USED = 50


@dataclass(frozen=True)
class ColdSplit:
    train: Interactions
    test: Interactions
    cold_items: np.ndarray  # external ids, sorted


def coldstart_split(
    interactions: Interactions, *, fraction: float = COLD_FRACTION, seed: int = 0
) -> ColdSplit:
    data = collapse_duplicates(interactions)
    items = np.unique(data.items)
    n_cold = int(round(fraction * len(items)))
    cold = np.sort(np.random.default_rng(seed).permutation(items)[:n_cold])
    is_test = np.isin(data.items, cold)
    return ColdSplit(data.take(~is_test), data.take(is_test), cold)


def _history(train: Interactions) -> dict[int, np.ndarray]:
    """Per user: liked training items, most recent first (at most HISTORY_USED)."""
    order = np.lexsort((-train.timestamps, train.users))
    users, items, values = train.users[order], train.items[order], train.values[order]
    out: dict[int, np.ndarray] = {}
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        liked = items[s:e][values[s:e] >= LIKED_RATING]
        out[int(users[s])] = (liked if len(liked) else items[s:e])[:HISTORY_USED]
    return out


def _metrics(ranked: np.ndarray, truth: set[int], n_test: int) -> tuple[float, float]:
    hits = np.array([i in truth for i in ranked[:RECALL_K].tolist()], dtype=bool)
    recall = hits.sum() / min(RECALL_K, n_test)
    head = hits[:NDCG_K]
    discounts = 1.0 / np.log2(np.arange(2, NDCG_K + 2))
    dcg = float((head * discounts[: len(head)]).sum())
    idcg = float(discounts[: min(NDCG_K, n_test)].sum())
    return float(recall), dcg / idcg


def coldstart_evaluate(
    split: ColdSplit, vectors: Mapping[int, np.ndarray], *, seed: int = 0
) -> list[dict]:
    """Rows ``{name, recall@20, ndcg@10, n_users_tested, n_cold_items, cold_with_vectors}``."""
    cold = split.cold_items
    history = _history(split.train)
    test_users = np.unique(split.test.users)
    tested = [int(u) for u in test_users.tolist() if int(u) in history]
    truth: dict[int, set[int]] = {u: set() for u in tested}
    for u, i in zip(split.test.users.tolist(), split.test.items.tolist(), strict=True):
        if u in truth:
            truth[u].add(i)

    dims = len(next(iter(vectors.values()))) if vectors else 1
    has = np.array([int(i) in vectors for i in cold.tolist()])
    C = np.stack([vectors.get(int(i), np.zeros(dims, np.float32)) for i in cold.tolist()])
    future = np.array(
        [np.sum(split.test.items == i) for i in cold.tolist()], dtype=np.float64
    )  # oracle counts
    pop_order = cold[np.lexsort((cold, -future))]
    rng = np.random.default_rng(seed)

    sums = {"random": [0.0, 0.0], "popularity (oracle)": [0.0, 0.0], "hybrid (text)": [0.0, 0.0]}
    for u in tested:
        t = truth[u]
        n_test = len(t)
        for name, ranked in (
            ("random", cold[rng.permutation(len(cold))]),
            ("popularity (oracle)", pop_order),
        ):
            r, g = _metrics(ranked, t, n_test)
            sums[name][0] += r
            sums[name][1] += g
        h = [vectors[int(i)] for i in history[u].tolist() if int(i) in vectors]
        if h:
            sims = C @ np.stack(h).T  # cold x history
            k = min(2, sims.shape[1])
            score = -np.sort(-sims, axis=1)[:, :k].mean(axis=1)
            score[~has] = -np.inf
            ranked = cold[np.lexsort((cold, -score))]
        else:
            ranked = cold[rng.permutation(len(cold))]
        r, g = _metrics(ranked, t, n_test)
        sums["hybrid (text)"][0] += r
        sums["hybrid (text)"][1] += g
    n = max(len(tested), 1)
    return [
        {
            "name": name,
            "recall@20": s[0] / n,
            "ndcg@10": s[1] / n,
            "n_users_tested": len(tested),
            "n_cold_items": len(cold),
            "cold_with_vectors": int(has.sum()),
        }
        for name, s in sums.items()
    ]


def format_coldstart(rows: list[dict]) -> str:
    head = f"{'cold-start (10% items held out)':<34}{'recall@20':>10}{'ndcg@10':>9}{'users':>7}"
    out = [head]
    for r in rows:
        out.append(
            f"  {r['name']:<32}{r['recall@20']:>10.4f}{r['ndcg@10']:>9.4f}{r['n_users_tested']:>7}"
        )
    if rows:
        out.append(
            f"  ({rows[0]['n_cold_items']} cold items, {rows[0]['cold_with_vectors']} with a text vector)"
        )
    return "\n".join(out)
