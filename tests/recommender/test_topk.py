"""engine.top_k: the k best columns per row, exactly the full stable sort's, on score matrices
of every shape the selection and ``evaluate`` rank (ties, -inf history, NaN, float64)."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.engine import top_k
from recommender.engine.topk import BLOCK


def reference(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def scores_of(kind: str, rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    s = rng.standard_normal((n, m)).astype(np.float32)
    if kind == "ties":  # few distinct values: ties at the cut in every row
        s = rng.integers(0, 4, (n, m)).astype(np.float32)
    elif kind == "history":  # a seen item is excluded with -inf, as the metrics do
        s[rng.random((n, m)) < 0.5] = -np.inf
    elif kind == "nan":
        s[rng.random((n, m)) < 0.05] = np.nan
        s[rng.random((n, m)) < 0.05] = -0.0
        s[rng.random((n, m)) < 0.05] = 0.0
    elif kind == "sparse":  # an unknown user: zeros and a handful of scored items
        s = np.zeros((n, m), np.float32)
        s[:, rng.integers(0, m, 5)] = 1.0
    elif kind == "float64":
        s = rng.standard_normal((n, m))
    return s


@pytest.mark.parametrize("kind", ["normal", "ties", "history", "nan", "sparse", "float64"])
def test_top_k_is_the_stable_sorts_prefix(kind):
    rng = np.random.default_rng(7)
    for m in (1, 7, 160, 1_681, 3 * BLOCK * 80 + 13):
        for k in (0, 1, 10, 20, 50):
            s = scores_of(kind, rng, 23, m)
            got = top_k(s, k)
            assert got.shape == (23, min(k, m))
            np.testing.assert_array_equal(got, reference(s, k), err_msg=f"{kind} m={m} k={k}")


def test_a_tie_at_the_cut_goes_to_the_lower_column_even_outside_the_searched_blocks():
    # every block's maximum is 1.0: the search reads k blocks and must still hand the ties at
    # the cut to the lowest columns, wherever they are
    m, k = 200 * BLOCK, 20
    s = np.zeros((3, m), np.float32)
    s[:, ::BLOCK] = 1.0  # one 1.0 at the start of each of the 200 blocks
    s[0, 5 * BLOCK + 3] = 2.0  # a clear winner, then the ties
    s[1, ::-BLOCK] = 1.0
    got = top_k(s, k)
    np.testing.assert_array_equal(got, reference(s, k))
    assert got[0, 0] == 5 * BLOCK + 3
    assert list(got[0, 1:4]) == [0, BLOCK, 2 * BLOCK]


def test_top_k_refuses_a_vector():
    with pytest.raises(ValueError, match="2-d"):
        top_k(np.zeros(5, np.float32), 2)
