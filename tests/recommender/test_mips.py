"""engine.top_inner_products: the top k of a factor product read by decreasing item norm is
exactly the full product's, and reads few items when the norms fall steeply. engine.top_unseen:
every user's top k outside their rows, as the scan gives it user by user."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.engine import NormOrder, top_inner_products, top_unseen


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


@pytest.mark.parametrize("steep", [True, False], ids=["steep norms", "even norms"])
def test_top_unseen_is_each_users_top_k_outside_their_rows(steep):
    rng = np.random.default_rng(3)
    items = _factors(rng, 400, 16, steep=steep)
    users = rng.normal(size=(23, 16)).astype(np.float32)
    seen = sp.random(23, 400, density=0.1, format="lil", random_state=4, dtype=np.float32)
    seen[5, :] = 1.0  # a user who has seen everything
    seen[6, :] = 1.0
    seen[6, [3, 99]] = 0.0  # and one with two items left: fewer than k
    seen = sp.csr_matrix(seen)
    seen.eliminate_zeros()
    positions, scores = top_unseen(NormOrder.of(items), users, seen, 30)
    assert positions.shape == scores.shape == (23, 30)
    for u in range(23):
        want, want_scores = _full(items, users[u], 30, seen[u].indices)
        got = positions[u][positions[u] >= 0]
        assert got.tolist() == want.tolist(), u
        assert np.allclose(scores[u][: len(got)], want_scores, rtol=1e-5, atol=1e-6)
        assert np.isneginf(scores[u][len(got) :]).all()
    assert (positions[5] == -1).all()
    assert sorted(positions[6][:2].tolist()) == [3, 99] and (positions[6][2:] == -1).all()
