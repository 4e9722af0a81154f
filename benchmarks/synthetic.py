"""Synthetic interaction data of realistic shape, written in the MovieLens layout so that
``manage.py evaluate --ratings`` and ``--protocol fewshot`` read it like a real catalog.

Structure (so collaborative filtering has signal, as in real data):

- items: Zipf popularity (exponent ``zipf``), each item in one of ``clusters`` latent taste
  clusters (its primary genre, plus a random second genre for a third of the items);
- users: a Dirichlet mixture over 1-4 clusters, an activity drawn from a log-normal scaled
  to the requested number of interactions (at least ``min_per_user``);
- noise: a share ``noise`` of the sessions draw from the whole catalog by popularity;
- sequences: a user's history comes in sessions of a few items; each session stays in the
  previous session's cluster with probability ``stickiness``, else draws one from the user's
  mixture; inside a cluster items are drawn by popularity^``pop_weight`` times a per-user
  affinity, without replacement across the history. With ``timestamps`` the sessions are
  hours apart and items in one a minute apart; without them the file has no timestamp column.
- values: ratings 0.5-5 (``rating``) or heavy-tailed play counts (``plays``).

Shapes used by ``benchmarks/bench_models.py`` (``SHAPES``): an ML-100k-like dense movie set,
a Last.fm-like play-count set without timestamps, and a sparse mid-size set with timestamps.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Shape", "SHAPES", "generate", "write"]


@dataclass(frozen=True)
class Shape:
    name: str
    users: int
    items: int
    interactions: int
    timestamps: bool = True
    values: str = "rating"  # "rating" or "plays"
    clusters: int = 18
    zipf: float = 0.9
    pop_weight: float = 0.6
    affinity: float = 1.0
    stickiness: float = 0.7
    session: float = 6.0
    min_per_user: int = 5
    activity_sigma: float = 0.9
    noise: float = 0.35  # share of picks drawn by global popularity, whatever the taste


SHAPES: dict[str, Shape] = {
    # 943 users x 1,682 items, 100k ratings, every user with at least 20 (ML-100k)
    "ml100k": Shape(
        "ml100k", 943, 1682, 100_000, min_per_user=20, zipf=1.0, clusters=30, pop_weight=1.2
    ),
    # 1,892 users x 17,632 artists, 92.8k (user, artist) play counts, no time (Last.fm hetrec)
    "lastfm": Shape(
        "lastfm",
        1892,
        17_632,
        92_834,
        timestamps=False,
        values="plays",
        clusters=30,
        zipf=0.8,
        min_per_user=5,
        activity_sigma=0.3,
        stickiness=0.8,
        session=10.0,
    ),
    # sparse, mid-size, with sessions: 4k users x 6k items, 60k interactions
    "sparse": Shape("sparse", 4000, 6000, 60_000, clusters=25, zipf=1.1, min_per_user=5),
}


def generate(
    shape: Shape, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[int, tuple[str, ...]]]:
    """(users, items, values, timestamps, genres per item) as arrays of one row per pair."""
    rng = np.random.default_rng(seed)
    n_u, n_i, C = shape.users, shape.items, shape.clusters
    pop = 1.0 / np.arange(1, n_i + 1) ** shape.zipf
    rng.shuffle(pop)
    cluster = rng.integers(0, C, n_i)
    second = np.where(rng.random(n_i) < 0.33, rng.integers(0, C, n_i), -1)
    members = [np.flatnonzero(cluster == c) for c in range(C)]
    everything = np.arange(n_i)
    # item quality inside its cluster: what makes two users of one cluster agree
    quality = rng.normal(0.0, 1.0, n_i)
    activity = rng.lognormal(0.0, shape.activity_sigma, n_u)
    extra = shape.interactions - shape.min_per_user * n_u
    counts = shape.min_per_user + np.floor(activity / activity.sum() * max(extra, 0)).astype(int)
    counts = np.minimum(counts, n_i // 2)
    users, items, stamps = [], [], []
    t0 = 1_000_000_000
    for u in range(n_u):
        k = int(rng.integers(1, min(C, 6)))
        interests = rng.choice(C, size=k, replace=False)
        mix = rng.dirichlet(np.ones(k))
        taste = rng.normal(0.0, 1.0)  # per-user weight on quality
        seen: set[int] = set()
        seq: list[int] = []
        current = rng.choice(interests, p=mix)
        guard = 0
        while len(seq) < counts[u] and guard < 30 * counts[u]:
            guard += 1
            if rng.random() > shape.stickiness:
                current = rng.choice(interests, p=mix)
            pool = members[current] if rng.random() >= shape.noise else everything
            if len(pool) == 0:
                continue
            size = max(1, int(rng.poisson(shape.session)))
            w = pop[pool] ** shape.pop_weight * np.exp(
                shape.affinity * (0.5 + 0.5 * taste) * quality[pool]
            )
            w = w / w.sum()
            picks = rng.choice(pool, size=min(size, len(pool)), replace=False, p=w)
            for i in picks.tolist():
                if i not in seen and len(seq) < counts[u]:
                    seen.add(i)
                    seq.append(i)
        start = t0 + int(rng.integers(0, 3 * 365 * 86400))
        gaps = np.where(rng.random(len(seq)) < 1.0 / shape.session, 3600 * 20, 60)
        users.append(np.full(len(seq), u + 1))
        items.append(np.asarray(seq, dtype=np.int64) + 1)
        stamps.append(start + np.cumsum(gaps))
    u_arr = np.concatenate(users)
    i_arr = np.concatenate(items)
    t_arr = np.concatenate(stamps)
    if shape.values == "plays":
        v_arr = np.ceil(rng.pareto(1.2, len(u_arr)) * 20 + 1)
    else:
        q = quality[i_arr - 1] + rng.normal(0, 1.0, len(u_arr))
        v_arr = np.clip(np.round((3.5 + 0.8 * q) * 2) / 2, 0.5, 5.0)
    names = [f"G{c:02d}" for c in range(C)]
    genres = {
        i + 1: tuple(names[g] for g in {int(cluster[i]), int(second[i])} if g >= 0)
        for i in range(n_i)
    }
    return u_arr, i_arr, v_arr, t_arr, genres


def write(shape: Shape, folder: Path, seed: int = 0) -> Path:
    """``ratings.csv`` (without a timestamp column when the shape has none) and ``movies.csv``
    (genres) under ``folder``; returns the ratings path."""
    users, items, values, stamps, genres = generate(shape, seed)
    folder.mkdir(parents=True, exist_ok=True)
    ratings = folder / "ratings.csv"
    fmt = "{:d},{:d},{:g},{:d}\n" if shape.timestamps else "{:d},{:d},{:g}\n"
    with open(ratings, "w", encoding="utf-8") as fh:
        fh.write(
            "userId,movieId,rating,timestamp\n" if shape.timestamps else "userId,movieId,rating\n"
        )
        for row in zip(
            users.tolist(), items.tolist(), values.tolist(), stamps.tolist(), strict=True
        ):
            fh.write(fmt.format(*(row if shape.timestamps else row[:3])))
    with open(folder / "movies.csv", "w", encoding="utf-8") as fh:
        fh.write("movieId,title,genres\n")
        for item, g in sorted(genres.items()):
            fh.write(f"{item},Item {item},{'|'.join(g) or '(no genres listed)'}\n")
    return ratings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder; one sub-folder per shape")
    parser.add_argument("--shape", action="append", choices=sorted(SHAPES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in args.shape or sorted(SHAPES):
        path = write(SHAPES[name], args.out / name, args.seed)
        print(path)


if __name__ == "__main__":
    main()
