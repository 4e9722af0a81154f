"""Exact top-k over a factor model's items: the full product against the scan by decreasing
item norm (``recommender.engine.mips``), in the same run on the same model.

    python benchmarks/bench_mips.py [--items 60000,200000] [--interactions 1000000]
                                    [--users 20000] [--heaviest 100] [--k 60]

For each catalog size: a seeded catalog shaped as ``bench_scale.py`` makes it (Zipf item
popularity, exponent 0.9; lognormal user activity), ALS (64 factors) fitted by the engine,
then for the ``--heaviest`` users (their own histories excluded, as serving excludes them)
the top ``k`` by the full product ``item_factors @ v`` and by the norm scan, on one BLAS
thread as a request runs: p50 / p95 / mean of each, the ratio, whether every list is the
same, the share of the items the scan read, and the memory of the norm-ordered copy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recommender.engine import (  # noqa: E402
    NormOrder,
    blas_threads,
    get_model,
    top_inner_products,
)


def catalog(n_items: int, n_interactions: int, n_users: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    popularity /= popularity.sum()
    activity = rng.lognormal(0.0, 1.1, n_users)
    sizes = np.clip((activity / activity.sum() * n_interactions).astype(int), 5, n_items // 2)
    rows, cols = [], []
    for u, size in enumerate(sizes.tolist()):
        picks = np.unique(rng.choice(n_items, size=size, p=popularity))
        rows.append(np.full(len(picks), u))
        cols.append(picks)
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(n_users, n_items))


def full_product(factors: np.ndarray, v: np.ndarray, k: int, seen: np.ndarray) -> np.ndarray:
    scores = factors @ v
    scores[seen] = -np.inf
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def timed(fn, repeat: int = 5) -> tuple[float, object]:  # noqa: ANN001
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best * 1000, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", default="60000,200000")
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--heaviest", type=int, default=100)
    parser.add_argument("--k", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{'items':>8} {'full p50/p95/mean ms':>22} {'scan p50/p95/mean ms':>22} {'ratio':>6}"
          f" {'same':>7} {'read':>6} {'copy MB':>8}")  # fmt: skip
    for n_items in [int(x) for x in args.items.split(",")]:
        X = catalog(n_items, args.interactions, args.users, args.seed)
        X = X[:, np.flatnonzero(np.diff(X.tocsc().indptr))].tocsr()  # items someone liked
        model = get_model("als", factors=64, regularization=0.05).fit(X)
        factors = model.item_factors
        order = NormOrder.of(factors)
        heavy = np.argsort(-np.diff(X.indptr), kind="stable")[: args.heaviest]
        full_ms, scan_ms, read, same = [], [], [], 0
        with blas_threads(1):
            for u in heavy.tolist():
                seen = X.indices[X.indptr[u] : X.indptr[u + 1]]
                v = model.user_vectors(X[u])[0]
                a_ms, a = timed(lambda: full_product(factors, v, args.k, seen))  # noqa: B023
                b_ms, (pos, scores) = timed(
                    lambda: top_inner_products(order, v, args.k, seen)  # noqa: B023
                )
                b = pos[np.argsort(-scores, kind="stable")]
                same += a.tolist() == b.tolist()
                kth = float(scores.min())
                reach = float(np.linalg.norm(v)) * order.sorted_norms
                read.append(int(np.searchsorted(-reach, -kth)) / len(factors))
                full_ms.append(a_ms)
                scan_ms.append(b_ms)

        def fig(ms: list[float]) -> str:
            return f"{np.percentile(ms, 50):.2f}/{np.percentile(ms, 95):.2f}/{np.mean(ms):.2f}"

        print(
            f"{len(factors):>8,} {fig(full_ms):>22} {fig(scan_ms):>22}"
            f" {np.mean(full_ms) / np.mean(scan_ms):>5.1f}x {same:>3}/{len(heavy):<3}"
            f" {np.median(read):>6.1%} {order.sorted_factors.nbytes / 2**20:>8.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
