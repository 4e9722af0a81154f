"""The cold-start protocol's mechanics on a tiny synthetic data set with known answers."""

from __future__ import annotations

import numpy as np

from recommender.embeddings.evaluation import coldstart_evaluate, coldstart_split, format_coldstart
from recommender.evaluation import Interactions


def _data() -> tuple[Interactions, dict[int, np.ndarray]]:
    # 40 items in two themes (even: theme A, odd: theme B); users of theme A rate only even
    # items and users of theme B only odd ones. Vectors: one axis per theme, plus noise.
    rng = np.random.default_rng(1)
    users, items = [], []
    for u in range(60):
        theme = u % 2
        pool = [i for i in range(40) if i % 2 == theme]
        for i in rng.choice(pool, 12, replace=False):
            users.append(u)
            items.append(int(i))
    n = len(users)
    data = Interactions(
        users=np.array(users, np.int64),
        items=np.array(items, np.int64),
        timestamps=np.arange(n, dtype=np.int64),
        values=np.full(n, 4.0, np.float32),
    )
    vectors = {}
    for i in range(40):
        v = np.array([1.0, 0.0] if i % 2 == 0 else [0.0, 1.0]) + rng.normal(0, 0.05, 2)
        vectors[i] = (v / np.linalg.norm(v)).astype(np.float32)
    return data, vectors


def test_cold_items_are_held_out_entirely():
    data, _ = _data()
    split = coldstart_split(data, seed=3)
    assert len(split.cold_items) == 4  # 10% of 40
    assert not np.isin(split.train.items, split.cold_items).any()
    assert np.isin(split.test.items, split.cold_items).all()
    assert len(split.train) + len(split.test) == len(data)


def test_text_similarity_beats_random_and_the_table_prints():
    data, vectors = _data()
    rows = {r["name"]: r for r in coldstart_evaluate(coldstart_split(data, seed=3), vectors)}
    assert rows["hybrid (text)"]["recall@20"] == 1.0  # 4 cold items < 20: all ranked
    # the user's cold items are always of their theme: ranked in the first two places
    assert rows["hybrid (text)"]["ndcg@10"] > rows["random"]["ndcg@10"] + 0.15
    assert rows["hybrid (text)"]["ndcg@10"] > 0.8
    assert rows["random"]["n_users_tested"] > 0
    table = format_coldstart(list(rows.values()))
    assert "hybrid (text)" in table and "popularity (oracle)" in table
