"""The few-shot protocol (EVALUATION.md, "New users"): the standard split, then each tested user
keeps only ``k`` of their training interactions, drawn with the seed; other users keep theirs.

``share`` picks which tested users are the new ones (see :func:`fewshot_train`).
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

__all__ = ["fewshot_train", "genres_by_item", "load_genres", "split_genres"]


def fewshot_train(data_split: Split, k: int, seed: int = 0, share: float = 1.0) -> Split:
    """The split with its tested users cut to ``k`` random training interactions each
    (``numpy.random.default_rng(seed)``, users in ascending id order; a user with ``k`` or
    fewer keeps them all).

    ``share`` < 1 makes only that share of the tested users (drawn with the same generator)
    the new users: they alone are cut and tested, and the others keep all their training rows
    and are not tested. On a dataset where every user is tested (ml-latest-small: all 610)
    ``share=1`` leaves the model ``k`` interactions per user to learn from, nothing like a
    new user arriving at a site whose other users have histories."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share}")
    train, test = data_split.train, data_split.test
    rng = np.random.default_rng(seed)
    tested = np.unique(test.users)
    if share < 1.0:
        n_new = max(1, int(round(share * len(tested))))
        tested = np.sort(rng.choice(tested, n_new, replace=False))
        test = test.take(np.flatnonzero(np.isin(test.users, tested)))
    order = np.lexsort((train.items, train.users))
    users = train.users[order]
    keep = np.ones(len(order), dtype=bool)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    is_tested = np.isin(users[starts], tested)
    for s, e, t in zip(starts.tolist(), ends.tolist(), is_tested.tolist(), strict=True):
        if t and e - s > k:
            drop = rng.permutation(e - s)[k:]
            keep[s + drop] = False
    return Split(
        train=train.take(np.sort(order[keep])),
        test=test,
        method=data_split.method,
        seed=data_split.seed,
    )


def load_genres(path: str | os.PathLike[str]) -> dict[str, tuple[str, ...]]:
    """``item id (as written) -> genres`` from a MovieLens ``movies.csv`` (``movieId,title,
    genres``, genres separated by ``|``; "(no genres listed)" counts as none). Ids stay text
    here: :func:`genres_by_item` numbers them as the ratings file numbered its items."""
    out: dict[str, tuple[str, ...]] = {}
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
            out[row[c_id].strip()] = split_genres(row[c_genres])
    return out


def split_genres(text: str) -> tuple[str, ...]:
    return tuple(g for g in text.split("|") if g and not g.startswith("("))


def genres_by_item(
    genres: dict[str, tuple[str, ...]], data: Interactions
) -> dict[int, tuple[str, ...]]:
    """``genres`` keyed by ``data``'s item ids: the integer ids themselves, or for a ratings file
    with other ids (``Interactions.item_labels``) each label's number. Ids ``data`` never names
    are left out."""
    if data.item_labels is not None:
        number = {str(label): i for i, label in enumerate(data.item_labels.tolist())}
        return {number[text]: names for text, names in genres.items() if text in number}
    present = set(np.unique(data.items).tolist())
    out: dict[int, tuple[str, ...]] = {}
    for text, names in genres.items():
        try:
            item = int(text)
        except ValueError:
            continue
        if item in present:
            out[item] = names
    return out
