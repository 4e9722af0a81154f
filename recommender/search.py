"""The search list's ranking (the API's ``items/?q=``): which items match a query and in what
order, kept per query, filters and catalog fingerprint.

Ranking a query costs the full-text match, the substring and typo layers and the popularity
prior (or, with ``semantic``, the fused full-text and meaning rankings); serving a page of an
already ranked query costs one read of its rows by primary key. A repeated query (the same
words from many users, or the next page) is ranked once per process until any item changes
(the fingerprint) or ``SEARCH_RANKING_SECONDS`` pass: the interactions behind the popularity
prior and newly stored text vectors move the order without changing the catalog, and the
answer already tells HTTP caches it may be a minute old.

A relevance-ordered list shows the ``RANKING_MAX`` best matches (as the hybrid ranking always
has): a word such as "the" matches thousands of titles, and ranking all of them for every page
cost more than all the rest of the search. Another order (title, year, popularity) over a
query matching more titles than that still reads every match, ranked in SQL page by page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from catalog.models import Item
from catalog.search_sql import ranked_matches
from recsite.memo import Memo
from recsite.model_rows import ModelRows

from .embeddings.selectors import hybrid_catalog_ids
from .serving import serving_state

__all__ = ["PAGE_DEFERRED", "RANKING_MAX", "Ranking", "ranked_items", "search_ranking"]

RANKING_MAX = 500  # as many as the hybrid ranking keeps
SEARCH_RANKING_SECONDS = 60.0
# a ranking is up to 500 pairs (~50 kB): 256 of them bound what many distinct queries can hold
_RANKINGS = Memo(size=256, seconds=SEARCH_RANKING_SECONDS)
# what a search page never shows stays unread: the title's trigrams and the timestamps' parsing
# cost more than the rest of a row
PAGE_DEFERRED = ("search_vector", "title_trigrams", "metadata", "created_at", "updated_at")
_PAGE_ROWS = ModelRows(Item, exclude=PAGE_DEFERRED)
_PAGE_SQL = (
    f"SELECT {_PAGE_ROWS.columns('i')} FROM {Item._meta.db_table} i"
    " WHERE i.id = ANY(%s) AND NOT i.is_hidden"
)


@dataclass(frozen=True)
class Ranking:
    best: list[tuple[int, float]]  # (item id, rank), best first, at most RANKING_MAX
    complete: bool  # every match is in ``best``


def search_ranking(
    *,
    query: str,
    genre: str = "",
    year_min: int | None = None,
    year_max: int | None = None,
    semantic: bool = False,
) -> Ranking:
    """The best matches of ``query`` under the filters, with their rank. With ``semantic`` and
    stored text vectors, the fused full-text and meaning order (``hybrid_catalog_ids``); else
    the catalog's full-text rank."""
    key = (query.strip(), genre, year_min, year_max, bool(semantic), serving_state()[1])
    kept = _RANKINGS.get(key)
    if kept is not None:
        return kept
    hybrid = None
    if semantic:
        hybrid = hybrid_catalog_ids(
            query=query, genre=genre, year_min=year_min, year_max=year_max, limit=RANKING_MAX
        )
    if hybrid is not None:
        ranking = Ranking(hybrid, complete=True)  # fused: nothing ranks below its cut
    else:
        # catalog_search's relevance order, written out as fixed statements: compiling its
        # expressions cost more than running them
        best = ranked_matches(
            query=query, genre=genre, year_min=year_min, year_max=year_max, limit=RANKING_MAX + 1
        )
        if best is None:  # year words alone: no rank (the API lists them by popularity)
            best = []
        ranking = Ranking(best[:RANKING_MAX], complete=len(best) <= RANKING_MAX)
    _RANKINGS.set(key, ranking)
    return ranking


def ranked_items(best: list[tuple[int, float]]) -> list[Item]:
    """The visible items of ``best`` (a slice of a ranking), each with its ``rank``, by rank
    then id: the rows and order the ORM gives for ``item_list().filter(pk__any=ids)`` annotated
    with the rank and ordered by ``("-rank", "id")``, read in one fixed statement (compiling
    that query cost more than the rest of a search page)."""
    if not best:
        return []
    rank = dict(best)
    with connection.cursor() as cursor:
        cursor.execute(_PAGE_SQL, [list(rank)])
        items = [_PAGE_ROWS.instance(row) for row in cursor.fetchall()]
    for item in items:
        item.rank = rank[item.pk]
    items.sort(key=lambda item: (-item.rank, item.pk))
    return items
