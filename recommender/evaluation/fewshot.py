"""The few-shot protocol (EVALUATION.md, "New users"): the standard split, then each tested user
keeps only ``k`` of their training interactions, drawn with the seed; other users keep theirs.

It measures what a new user with a handful of favourites is shown: Recall@20 and NDCG@10 as
usual, plus ``genre@10`` (the share of the top 10 that shares a genre with the user's ``k``
items) when the items' genres are known.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from .data import Interactions, Split

__all__ = ["fewshot_train", "load_genres"]


def fewshot_train(data_split: Split, k: int, seed: int = 0) -> Interactions:
    """The training rows of ``data_split`` with every tested user cut to ``k`` random training
    interactions (``numpy.random.default_rng(seed)``, users in ascending id order; a user with
    ``k`` or fewer keeps them all). Users who are not tested keep all their rows."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    train = data_split.train
    tested = np.unique(data_split.test.users)
    order = np.lexsort((train.items, train.users))
    users = train.users[order]
    keep = np.ones(len(order), dtype=bool)
    rng = np.random.default_rng(seed)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    is_tested = np.isin(users[starts], tested)
    for s, e, t in zip(starts.tolist(), ends.tolist(), is_tested.tolist(), strict=True):
        if t and e - s > k:
            drop = rng.permutation(e - s)[k:]
            keep[s + drop] = False
    return train.take(np.sort(order[keep]))


def load_genres(path: str | os.PathLike[str]) -> dict[int, tuple[str, ...]]:
    """``movieId -> genres`` from a MovieLens ``movies.csv`` (``movieId,title,genres``, genres
    separated by ``|``; "(no genres listed)" counts as none)."""
    out: dict[int, tuple[str, ...]] = {}
    with open(Path(path), encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        try:
            c_id, c_genres = header.index("movieid"), header.index("genres")
        except ValueError:
            raise ValueError(f"{path}:1: expected a header with movieId and genres") from None
        for row in reader:
            if len(row) <= max(c_id, c_genres):
                continue
            genres = tuple(g for g in row[c_genres].split("|") if g and not g.startswith("("))
            out[int(row[c_id])] = genres
    return out
