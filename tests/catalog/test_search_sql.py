"""catalog.search_sql.ranked_matches: the search list's relevance ranking written out as fixed
statements gives the ORM ranking's rows and ranks exactly, for queries of every kind."""

from __future__ import annotations

import pytest

from catalog.models import Item
from catalog.search_sql import ranked_matches
from catalog.selectors import catalog_search

from .test_typo_search import MISSPELLED

pytestmark = pytest.mark.django_db

QUERIES = [
    *(typed for typed, _title in MISSPELLED[:12]),
    "Toy Story",  # an exact title
    "toy story (1995)",
    "ali",  # a partial word: the title substring layer
    "the",  # a word in thousands of titles
    "star wars",
    '"star wars" -empire',  # websearch syntax: no typo layer
    "alien or aliens",
    "comedy 90s",  # year words as bounds
    "action after 2000",
    "amélie",
    "léon",
    "100%",  # LIKE's wildcards, escaped
    "a_b",
    "o'brien",
    "back\\slash",
    "Ünïcödé çafé",
    "2001",
    "zzqxv wvkpl",  # nothing
    "!!!",
]

FILTERS = [{}, {"genre": "Comedy"}, {"year_min": 1990, "year_max": 1999}, {"genre": "Sci-Fi"}]


def _orm(query: str, limit: int, **filters) -> list[tuple[int, float]]:
    rows = catalog_search(query=query, sort="relevance", **filters)
    return list(rows.order_by("-rank", "id").values_list("id", "rank")[:limit])


@pytest.mark.parametrize("filters", FILTERS, ids=repr)
def test_the_fixed_statements_rank_as_the_orm_does(movielens_db, filters):
    # a hidden item that matches: neither ranking shows it
    Item.objects.filter(title__startswith="Aliens").update(is_hidden=True)
    compared = 0
    for query in QUERIES:
        ours = ranked_matches(query=query, limit=60, **filters)
        assert ours is not None, query
        assert ours == _orm(query, 60, **filters), query
        # a short list still sees whether the typo layer had room (it looks at 20 matches)
        assert ranked_matches(query=query, limit=3, **filters) == ours[:3], query
        compared += bool(ours)
    assert compared >= 15  # most queries match something under every filter
    assert not Item.objects.filter(
        pk__in=[i for i, _ in ranked_matches(query="aliens", limit=60)], is_hidden=True
    ).exists()


def test_year_words_alone_have_no_rank(movielens_db):
    assert ranked_matches(query="90s", limit=10) is None
    assert ranked_matches(query="  ", limit=10) is None
