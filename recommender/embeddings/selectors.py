"""Reads over item embeddings: semantic and hybrid search, and the cold-start user's list.

Hybrid ranking: reciprocal-rank fusion (k = 60) of the full-text ranking
(``catalog.selectors.catalog_search``) and the semantic one, so exact title/tag words and
meaning both count and neither scale has to be calibrated against the other. The stored
vectors are read in :mod:`.vectors`; cold-start items in :mod:`.coldstart`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from catalog.models import Item
from catalog.selectors import catalog_search

from ..history_read import user_history_ids
from ..reasons import reason_for
from ..types import Evidence, Filters, Recommendation
from .vectors import Space, embedding_space, nearest_items, query_vector

RRF_K = 60
FTS_WEIGHT = 1.0
SEMANTIC_WEIGHT = 1.0


# --- search ------------------------------------------------------------------------------------


def semantic_ranking(
    *, query: str, n: int = 20, filters: Filters | None = None, space: Space | None = None
) -> list[tuple[int, float]]:
    """(item id, similarity) by meaning alone; empty when there are no embeddings. ``space``:
    the embedding space when the caller has just read it (read again otherwise)."""
    query = (query or "").strip()
    if not query:
        return []
    space = space if space is not None else embedding_space()
    if space is None:
        return []
    vector = query_vector(text=query, space=space)
    if vector is None:
        return []
    return nearest_items(vector=vector, space=space, n=n, filters=filters)


def fts_ranking(*, query: str, n: int, filters: Filters | None = None) -> list[int]:
    """Item ids by the catalog's full-text ranking (websearch syntax + title match)."""
    if not (query or "").strip():
        return []
    qs = catalog_search(query=query, sort="relevance")
    return list((filters or Filters()).apply(qs).values_list("id", flat=True)[:n])


@dataclass
class Hit:
    item_id: int
    score: float  # fused, best = 1.0
    fts_rank: int | None  # 1-based position in the full-text ranking
    similarity: float | None  # cosine similarity to the query


def hybrid_ranking(
    *,
    query: str,
    filters: Filters | None = None,
    fts_limit: int = 200,
    semantic_limit: int = 100,
    space: Space | None = None,
) -> list[Hit]:
    """Full text and meaning fused by reciprocal rank (each list weighted, k = 60)."""
    filters = filters or Filters()
    fts = fts_ranking(query=query, n=fts_limit, filters=filters)
    sem = semantic_ranking(query=query, n=semantic_limit, filters=filters, space=space)
    hits: dict[int, Hit] = {}
    for pos, item_id in enumerate(fts, start=1):
        hits[item_id] = Hit(item_id, FTS_WEIGHT / (RRF_K + pos), pos, None)
    for pos, (item_id, sim) in enumerate(sem, start=1):
        hit = hits.setdefault(item_id, Hit(item_id, 0.0, None, None))
        hit.score += SEMANTIC_WEIGHT / (RRF_K + pos)
        hit.similarity = sim
    ordered = sorted(hits.values(), key=lambda h: (-h.score, h.item_id))
    top = ordered[0].score if ordered else 1.0
    for hit in ordered:
        hit.score /= top
    return ordered


def _as_recommendations(hits: Sequence[Hit], query: str, n: int) -> list[Recommendation]:
    hits = list(hits)[:n]
    items = Item.objects.in_bulk([h.item_id for h in hits])
    label = " ".join(query.split())[:80]
    out: list[Recommendation] = []
    for hit in hits:
        item = items.get(hit.item_id)
        if item is None:
            continue
        evidence = [Evidence("query_match", label, round(hit.score, 4))]
        if hit.similarity is not None and hit.fts_rank is None:
            evidence = [Evidence("query_match", label, round(max(hit.similarity, 0.0), 4))]
        rec = Recommendation(
            item=item,
            rank=len(out) + 1,
            score=hit.score,
            source="semantic" if hit.similarity is not None else "chat",
            evidence=evidence,
        )
        rec.reason = reason_for(rec)
        out.append(rec)
    return out


def semantic_search(
    *, query: str, n: int = 20, filters: Filters | None = None
) -> list[Recommendation]:
    """Items by meaning alone ("a feel-good film about space"), with query_match evidence."""
    pairs = semantic_ranking(query=query, n=n, filters=filters)
    return _as_recommendations([Hit(i, s, None, s) for i, s in pairs], query, n)


def hybrid_search(
    *, query: str, n: int = 20, filters: Filters | None = None
) -> list[Recommendation]:
    """Full text + meaning (see :func:`hybrid_ranking`); full text alone without embeddings."""
    n = max(1, min(int(n), 100))
    hits = hybrid_ranking(
        query=query, filters=filters, fts_limit=max(50, 3 * n), semantic_limit=max(50, 3 * n)
    )
    return _as_recommendations(hits, query, n)


def recommendations_for_text(
    *, text: str, user=None, n: int = 20, filters: Filters | None = None
) -> list[Recommendation]:
    """Cold-start users: what someone who only typed a wish gets. Hybrid search on the text,
    without the user's seen or dismissed items when there is a user."""
    filters = filters or Filters()
    if user is not None and getattr(user, "is_authenticated", False):
        history = user_history_ids(user_id=user.pk)
        filters = replace(filters, exclude_ids=frozenset(filters.exclude_ids | history.excluded))
    return hybrid_search(query=text, n=n, filters=filters)


def hybrid_catalog_ids(
    *,
    query: str,
    genre: str = "",
    year_min: int | None = None,
    year_max: int | None = None,
    limit: int = 500,
) -> list[tuple[int, float]] | None:
    """The catalog page's and the API's "relevance" order for a query: (item id, fused score),
    full text and meaning fused. None when there are no embeddings (callers keep full text)."""
    space = embedding_space() if (query or "").strip() else None
    if space is None:
        return None
    filters = Filters(genres=(genre,) if genre else (), year_min=year_min, year_max=year_max)
    # the space just read is passed on: below the HNSW threshold it is not cached, and reading
    # it again costs two more queries per search
    hits = hybrid_ranking(
        query=query,
        filters=filters,
        fts_limit=limit,
        semantic_limit=min(100, limit),
        space=space,
    )
    return [(h.item_id, h.score) for h in hits[:limit]]
