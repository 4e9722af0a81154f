"""engine.top_inner_products: the top k of a factor product read by decreasing item norm is
exactly the full product's, and reads few items when the norms fall steeply."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recommender.engine import NormOrder, top_inner_products


def _full(factors: np.ndarray, vector: np.ndarray, k: int, excluded: np.ndarray):
    scores = factors @ vector
    scores[excluded] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    top = np.argsort(-scores, kind="stable")[:k]
    return top, scores[top]


def _factors(rng: np.random.Generator, n: int, dim: int, steep: bool) -> np.ndarray:
    f = rng.normal(size=(n, dim)).astype(np.float32)
    if steep:  # norms falling with a Zipf-like popularity, as ALS gives a long tail
        f *= (1.0 / np.arange(1, n + 1) ** 0.8)[rng.permutation(n), None].astype(np.float32)
    return f


@pytest.mark.parametrize("steep", [True, False], ids=["steep norms", "even norms"])
@pytest.mark.parametrize("k", [1, 20, 60, 500])
def test_the_scan_finds_the_full_products_top_k(steep, k):
    rng = np.random.default_rng(k)
    factors = _factors(rng, 30_000, 32, steep)
    order = NormOrder.of(factors)
    for trial in range(5):
        vector = rng.normal(size=32).astype(np.float32) * (10 if trial % 2 else 0.1)
        # the most popular items seen (as a heavy user has), and some at random
        excluded = np.concatenate(
            [order.order[: 200 * trial], rng.choice(len(factors), 300, replace=False)]
        )
        pos, scores = top_inner_products(order, vector, k, excluded, first_block=512)
        want_pos, want_scores = _full(factors, vector, k, excluded)
        ranked = np.argsort(-scores, kind="stable")
        assert pos[ranked].tolist() == want_pos.tolist()
        # a product over a block of rows may round in another order than over all of them
        assert np.allclose(scores[ranked], want_scores, rtol=1e-5, atol=1e-7)
        assert not set(pos.tolist()) & set(excluded.tolist())


def test_it_stops_early_when_norms_fall_and_reads_all_when_they_do_not():
    rng = np.random.default_rng(3)
    read = []

    class Counting(np.ndarray):
        def __getitem__(self, rows):  # noqa: ANN001
            if isinstance(rows, slice):
                read.append(len(range(*rows.indices(len(self)))))
            return np.asarray(self).__getitem__(rows)

    def scan(factors: np.ndarray) -> int:
        order = NormOrder.of(factors)
        counted = replace(order, sorted_factors=order.sorted_factors.view(Counting))
        read.clear()
        top_inner_products(counted, vector, 20, np.empty(0, np.int64))
        return sum(read)

    vector = rng.normal(size=16).astype(np.float32)
    steep = _factors(rng, 50_000, 16, steep=True)
    assert scan(steep) < len(steep) // 4
    # even norms: no bound falls below the 20th score before the last block, every item is read
    even = _factors(rng, 5_000, 16, steep=False)
    assert scan(even) == len(even)


def test_fewer_items_than_asked_and_nothing_asked():
    factors = np.eye(4, dtype=np.float32)
    order = NormOrder.of(factors)
    pos, _ = top_inner_products(order, np.ones(4, np.float32), 10, np.array([1]))
    assert sorted(pos.tolist()) == [0, 2, 3]
    pos, scores = top_inner_products(order, np.ones(4, np.float32), 0, np.array([], int))
    assert len(pos) == len(scores) == 0


def test_a_process_never_serves_one_models_order_for_another():
    """The norm order is kept per fitted model; an id() can be reused once its model is freed,
    so an entry whose model is another object (here planted under the new model's id) is not
    served."""
    from recommender import storage

    rng = np.random.default_rng(5)

    class Fitted:
        def __init__(self) -> None:
            self.item_factors = rng.normal(size=(50, 4)).astype(np.float32)

    old, new = Fitted(), Fitted()
    storage._NORM_ORDERS[id(new)] = (old, NormOrder.of(old.item_factors))
    order = storage._norm_order(new)
    assert np.array_equal(order.sorted_factors, new.item_factors[order.order])
    assert storage._norm_order(new) is order  # kept for the model it was computed for
