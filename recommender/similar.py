"""Similar items: an item's neighbours in the active model (its neighbour list, or its nearest
vectors in a factor version), with the evidence of the explanation contract.

Everything that repeats is cached: an item's neighbours per version (a new version is a new key),
and the rows of those that pass a request's filters per (version, item, filters, catalog
fingerprint). Seen, dismissed and hidden items are left out per request, after the cache.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace

from catalog.models import Item
from recsite.memo import Memo

from . import storage
from .evidence import ItemFacts, recommendations_build
from .history import History
from .history_read import user_history_ids
from .models import ModelVersion
from .reasons import reason_for
from .serving import fill_scores, popular_fill, serving_state
from .types import Evidence, Filters, Recommendation

__all__ = ["reference_item", "similar_items", "similar_neighbour_pairs", "similar_vector_pairs"]


# An item's nearest vectors depend only on the model version: cached per (version, item), so a
# new version is a new key and nothing needs invalidating. Hidden, seen and filtered items are
# left out after the cache, per request.
SIMILAR_POOL = 100
SIMILAR_CACHE_SECONDS = 3600
# kept by reference in each process (``recsite.memo``): unpickling a cached list of rows on every
# request cost more than the rest of the request's Python
_PAIRS = Memo(size=2048, seconds=SIMILAR_CACHE_SECONDS)
_ROWS = Memo(size=512, seconds=SIMILAR_CACHE_SECONDS)


def similar_vector_pairs(
    *, version: ModelVersion, item_id: int, n: int, excluded: set[int]
) -> list[tuple[int, float]]:
    """(item id, cosine similarity) of the items nearest this one in a factor version, outside
    ``excluded``: from the cached pool of SIMILAR_POOL, or, when the excluded items eat it, from
    a search wide enough to skip them (not cached: it is one user's)."""
    key = f"recommender:similar:v{version.pk}:{version.created_at.timestamp()}:{int(item_id)}"
    pairs = _PAIRS.get(key)
    if pairs is None:
        pairs = storage.similar_by_vector(version=version, item_id=item_id, limit=SIMILAR_POOL)
        _PAIRS.set(key, pairs)
    kept = [(i, w) for i, w in pairs if i not in excluded]
    if len(kept) >= n or len(pairs) < SIMILAR_POOL:
        return kept
    wide = storage.similar_by_vector(version=version, item_id=item_id, limit=n + len(excluded) + 20)
    return [(i, w) for i, w in wide if i not in excluded]


def similar_neighbour_pairs(*, version: ModelVersion, item_id: int) -> list[tuple[int, float]]:
    """(item id, similarity) of an item's neighbour list in a neighbour version, best first;
    cached like the factor versions' pools (a version's lists never change)."""
    key = f"recommender:neighbours:v{version.pk}:{version.created_at.timestamp()}:{int(item_id)}"
    pairs = _PAIRS.get(key)
    if pairs is None:
        pairs = []
        for _id, packed_ids, packed_w in storage.neighbour_rows(
            version=version, item_ids=[item_id]
        ):
            if packed_ids:
                ids, w = storage.unpack_neighbors(packed_ids, packed_w)
                pairs = sorted(zip(ids.tolist(), w.tolist(), strict=True), key=lambda p: -p[1])
        _PAIRS.set(key, pairs)
    return pairs


class _SimilarRows:
    """The full rows of an item's similar items that pass the request's filters, kept per
    (version, item, filters, catalog fingerprint): every user asking for the same item and
    filters reads the same rows. Any item added, edited, hidden, curated or deleted changes the
    catalog's fingerprint (``serving_state``), hence the key; seen and dismissed items are left
    out after it, per request. An entry grows as requests need rows further down the list: a
    new dict replaces the old one, which other threads may be reading (the rows are read-only)."""

    def __init__(self, key: Hashable, filters: Filters) -> None:
        self.key = key
        self.filters = filters
        # id -> its row, or None: the item fails the filters (or is hidden, or gone)
        self.known: dict[int, Item | None] = _ROWS.get(key) or {}

    def read(self, ids: list[int]) -> dict[int, Item]:
        missing = [i for i in ids if i not in self.known]
        if missing:
            found = self.filters.apply(Item.objects.filter(pk__in=missing)).in_bulk()
            self.known = {**self.known, **{i: found.get(i) for i in missing}}
            _ROWS.set(self.key, self.known)
        return {i: row for i in ids if (row := self.known.get(i)) is not None}


def _similar_rows(*, version: ModelVersion | None, item_id: int, filters: Filters) -> _SimilarRows:
    state = serving_state()[1]
    stamp = f"{version.pk}:{version.created_at.timestamp()}" if version is not None else "none"
    return _SimilarRows((stamp, int(item_id), state, filters), filters)


_REFERENCES = Memo(size=4096, seconds=SIMILAR_CACHE_SECONDS)


def reference_item(*, pk: int) -> Item | None:
    """The visible item whose similar items are asked for (None: no such item, or hidden), kept
    per catalog fingerprint like the rows of its similar items: any change to an item changes
    the key."""
    key = (int(pk), serving_state()[1])
    found = _REFERENCES.get(key)
    if found is None:
        found = (Item.objects.filter(pk=pk, is_hidden=False).first(),)
        _REFERENCES.set(key, found)
    return found[0]


def similar_items(
    *,
    item: Item,
    n: int = 10,
    user=None,
    filters: Filters | None = None,
    version: ModelVersion | None = None,
) -> list[Recommendation]:
    """Items like this one, from the active model (its neighbour list or nearest vectors).

    With a user: their seen and dismissed items are left out and the evidence also names the
    genres they share with the user's favourites.
    """
    n = max(1, min(int(n), 100))
    filters = filters or Filters()
    version = version or serving_state()[0]  # given by callers that show its id
    history = (
        user_history_ids(user_id=user.pk) if user is not None and user.is_authenticated else None
    )
    excluded = {item.pk} | (history.excluded if history else set()) | set(filters.exclude_ids)
    pairs: list[tuple[int, float]] = []
    if version is not None:
        if version.serving == ModelVersion.Serving.FACTORS:
            # 3n: room for the filters (genre, year) applied below
            pairs = similar_vector_pairs(
                version=version, item_id=item.pk, n=3 * n, excluded=excluded
            )
        else:
            pairs = similar_neighbour_pairs(version=version, item_id=item.pk)
    candidates = [(i, w) for i, w in pairs if i not in excluded]
    # the filters are checked on the first few candidates (full rows for 3n, not the whole pool);
    # the rest are read only when those fall short
    head = candidates[: 3 * n]
    rows = _similar_rows(version=version, item_id=item.pk, filters=filters)
    allowed = rows.read([i for i, _ in head])
    if len(allowed) < n and len(candidates) > len(head):
        allowed |= rows.read([i for i, _ in candidates[len(head) :]])
    top = candidates[0][1] if candidates and candidates[0][1] > 0 else 1.0
    ordered = [(allowed[i], w / top, "cf", [(item.pk, w)]) for i, w in candidates if i in allowed][
        :n
    ]
    if len(ordered) < n:  # e.g. an item nobody has interacted with yet: same genres, popular
        same_genre = replace(
            filters, genres=tuple(item.genres) or filters.genres, exclude_ids=frozenset()
        )
        have = excluded | {i.pk for i, *_ in ordered}
        fill = popular_fill(version, same_genre, have, n - len(ordered))
        below = min((score for _i, score, *_ in ordered), default=None)
        for other, score in zip(fill, fill_scores(len(fill), below=below), strict=True):
            ordered.append((other, score, "popular", None))
    liked = History.of_liked(history.liked if history else [])
    reference_liked = history is not None and item.pk in set(history.liked)
    # The reference item is "history" only if this user liked it; otherwise the evidence is
    # what other users did: people who liked it also liked these.
    ordered = [
        (other, score, source, contribs if reference_liked else None)
        for other, score, source, contribs in ordered
    ]
    # the reference item is the one history item the evidence may name: its row is at hand
    known = {
        item.pk: ItemFacts(
            item.pk,
            item.title,
            item.year,
            item.genres,
            item.tags,
            item.is_pinned,
            item.is_featured,
            item.boost,
            True,
        )
    }
    recs = recommendations_build(ordered, liked, facts=known, catalog_state=serving_state()[1])
    for rec, (_other, score, source, _c) in zip(recs, ordered, strict=True):
        if source == "cf" and not reference_liked:
            rec.evidence.insert(
                0,
                Evidence(
                    "similar_users",
                    f"People who liked {item} also liked this",
                    round(float(score), 4),
                    item_id=item.pk,
                ),
            )
        shared = sorted(set(rec.item.genres) & set(item.genres))
        if shared:
            rec.evidence.append(
                Evidence(
                    "shared_attribute",
                    f"same genre as {item}: {', '.join(shared)}",
                    float(len(shared)),
                )
            )
        rec.reason = reason_for(rec)
    return recs
