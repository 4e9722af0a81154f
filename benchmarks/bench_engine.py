"""Engine benchmark: fit times, per-user serving latency, and fit-time scaling.

    python benchmarks/bench_engine.py [--ratings PATH] [--sizes 100000,1000000,5000000]

Prints
1. fit time of every registered model on ml-latest-small (all 100,836 ratings);
2. per-user latency of ``recommend(n=20)`` + ``explain(top=5)`` of the first 5 recommended
   items, in-process numpy, p50/p95 over 300 users, for the default model and ALS, plus
   the default's neighbour-table scoring (what the SQL query computes);
3. fit time and peak numpy memory of the default and ALS on synthetic power-law data with
   100k, 1M and 5M interactions, with synthetic timestamps (each user's interactions spread
   over sessions) so that the default model fits its session windows as it does in
   production. The default needs a dense items x items matrix: it refuses catalogs above
   its ``max_items`` (20,000); such sites serve ALS (``RECOMMENDER_MODEL=als``).

Models that use timestamps (the default) get them, as ``manage.py train`` gives them.

Runs with the engine's thread budget (2 threads). Nothing here is asserted: figures only.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recommender.engine import (  # noqa: E402
    DEFAULT_MODEL,
    DEFAULT_PARAMS,
    MODEL_NAMES,
    get_model,
    max_threads,
)
from recommender.evaluation import (  # noqa: E402
    build_timestamp_matrix,
    build_train_matrix,
    load_ratings_csv,
)

DEFAULT_RATINGS = REPO.parent / "shared" / "data" / "ml-latest-small" / "ratings.csv"


def synthetic(n_interactions: int, seed: int = 0) -> sp.csr_matrix:
    """Power-law users x items matrix with about ``n_interactions`` distinct entries.

    Item popularity is Zipf-like (p_i ~ 1 / (i + 10)^1.0) and user activity log-normal
    (median ~40, heavy tail), roughly MovieLens-shaped. Shapes: users = n / 50,
    items = 5 * sqrt(n) (100k -> 2k x 1.6k, 1M -> 20k x 5k, 5M -> 100k x 11k).
    """
    rng = np.random.default_rng(seed)
    n_users = max(100, n_interactions // 50)
    n_items = int(5 * np.sqrt(n_interactions))
    p_item = 1.0 / (np.arange(n_items) + 10.0)
    p_item /= p_item.sum()
    p_item = p_item[rng.permutation(n_items)]
    activity = rng.lognormal(mean=3.7, sigma=1.0, size=n_users)
    p_user = activity / activity.sum()
    keys = np.zeros(0, dtype=np.int64)
    while len(keys) < n_interactions:
        need = int((n_interactions - len(keys)) * 1.3) + 1000
        u = rng.choice(n_users, size=need, p=p_user)
        i = rng.choice(n_items, size=need, p=p_item)
        keys = np.unique(np.concatenate([keys, u.astype(np.int64) * n_items + i]))
    keys = rng.permutation(keys)[:n_interactions]
    X = sp.csr_matrix(
        (np.ones(len(keys), np.float32), (keys // n_items, keys % n_items)),
        shape=(n_users, n_items),
    )
    return X


def synthetic_timestamps(X: sp.csr_matrix, seed: int = 0) -> sp.csr_matrix:
    """Seconds for every entry of ``X`` (same sparsity): each user rates in sessions of about
    20 items, sessions days to months apart, items a minute or so apart within one."""
    rng = np.random.default_rng(seed + 1)
    T = sp.csr_matrix(X, dtype=np.float64, copy=True)
    T.sort_indices()
    for u in range(T.shape[0]):
        a, b = T.indptr[u], T.indptr[u + 1]
        k = b - a
        if k == 0:
            continue
        session = np.cumsum(rng.random(k) < 1 / 20)
        gaps = rng.exponential(60.0, k) + session * rng.exponential(30 * 86400.0)
        T.data[a:b] = 1.0e9 + np.cumsum(gaps)[rng.permutation(k)]
    return T


def timed_fit(
    name: str, X: sp.csr_matrix, timestamps: sp.csr_matrix | None = None, **params
) -> tuple[object, float, float]:
    model = get_model(name, **params)
    tracemalloc.start()
    t0 = time.perf_counter()
    if getattr(model, "uses_timestamps", False) and timestamps is not None:
        model.fit(X, timestamps=timestamps)
    else:
        model.fit(X)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return model, seconds, peak / 1e6


def latency(model, histories: list[np.ndarray]) -> tuple[float, float]:
    times = []
    for h in histories:
        t0 = time.perf_counter()
        recs = model.recommend(h, n=20)
        for r in recs[:5]:
            model.explain(h, r.item, top=5)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--ratings", type=Path, default=DEFAULT_RATINGS)
    ap.add_argument("--sizes", default="100000,1000000,5000000")
    ap.add_argument("--users", type=int, default=300, help="users for the latency figures")
    args = ap.parse_args()

    print(f"engine threads: {max_threads()}; default model: {DEFAULT_MODEL} {dict(DEFAULT_PARAMS)}")
    d = load_ratings_csv(args.ratings)
    m = build_train_matrix(d)
    X = m.X
    T = build_timestamp_matrix(d, m)
    print(
        f"\n== fit on {args.ratings.name}: {X.shape[0]} users x {X.shape[1]} items, {X.nnz} interactions"
    )
    print(f"{'model':<14}{'fit s':>8}{'peak MB':>9}")
    fitted = {}
    for name in MODEL_NAMES:
        model, secs, peak = timed_fit(name, X, T)
        fitted[name] = model
        print(f"{name:<14}{secs:>8.2f}{peak:>9.0f}")
    for k in (200, 500, 1000):
        t0 = time.perf_counter()
        table = fitted[DEFAULT_MODEL].neighbour_table(k=k)
        print(f"  neighbour_table(k={k}): {len(table):,} rows, {time.perf_counter() - t0:.2f} s")

    rng = np.random.default_rng(0)
    rows = rng.choice(X.shape[0], size=min(args.users, X.shape[0]), replace=False)
    histories = [X[r].indices.astype(np.int64) for r in rows]
    print(f"\n== per-user recommend(n=20) + explain(top=5) x 5 items, {len(histories)} users")
    print(f"{'model':<28}{'p50 ms':>8}{'p95 ms':>8}")
    for name in (DEFAULT_MODEL, "als"):
        p50, p95 = latency(fitted[name], histories)
        print(f"{name:<28}{p50:>8.2f}{p95:>8.2f}")
    table = fitted[DEFAULT_MODEL].neighbour_table(k=500)
    W = table.to_csr()
    times = []
    for h in histories:
        t0 = time.perf_counter()
        s = np.asarray(W[h].sum(axis=0)).ravel()
        s[h] = -np.inf
        np.argpartition(-s, 20)[:20]
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    print(
        f"{DEFAULT_MODEL + ' table k=500 (sparse)':<28}{np.percentile(ms, 50):>8.2f}{np.percentile(ms, 95):>8.2f}"
    )

    print("\n== fit-time scaling on synthetic power-law data")
    print(
        f"{'interactions':>12}{'users':>8}{'items':>7}  {'model':<8}{'fit s':>8}{'peak MB':>9}  note"
    )
    for n in (int(s) for s in args.sizes.split(",") if s):
        Xs = synthetic(n)
        Ts = synthetic_timestamps(Xs)
        for name in (DEFAULT_MODEL, "als"):
            note = "with session windows" if name == DEFAULT_MODEL else ""
            _, secs, peak = timed_fit(name, Xs, Ts)
            print(
                f"{Xs.nnz:>12,}{Xs.shape[0]:>8,}{Xs.shape[1]:>7,}  {name:<8}{secs:>8.2f}{peak:>9.0f}  {note}"
            )


if __name__ == "__main__":
    main()
