"""The catalog search's title substring match goes through the title trigrams' GIN index (so its
cost does not grow with the catalog) and still finds every title containing the query."""

from __future__ import annotations

import pytest

from catalog.models import Item
from catalog.selectors import (
    catalog_search,
    substring_prefilter,
    substring_trigrams,
    trigram_frequencies,
)

pytestmark = pytest.mark.django_db


def test_substring_trigrams_are_padded_where_the_query_shows_a_word_edge():
    # "star" ends a word and "wars" starts one; either may continue outside the query
    assert substring_trigrams("Star Wars") == ["  w", " wa", "ar ", "ars", "sta", "tar", "war"]
    assert substring_trigrams("lien") == ["ien", "lie"]
    assert substring_trigrams("item 12") == ["  1", " 12", "em ", "ite", "tem"]
    # a one-letter word at both edges is a whole word; non-ASCII text may fold differently in SQL
    assert substring_trigrams("of a") == ["  a", "of "]
    assert substring_trigrams("Amélie") == []


def test_the_prefilter_hands_the_index_the_rarest_trigrams_only(movielens_db):
    frequencies = trigram_frequencies()
    for query in ["star wars", "the lord of the rings", "item 12", "x-men"]:
        every = substring_trigrams(query)
        chosen = substring_prefilter(query)
        assert len(chosen) == min(3, len(every)) and set(chosen) <= set(every)
        left_out = set(every) - set(chosen)
        assert all(frequencies.get(c, 0) <= frequencies.get(g, 0) for c in chosen for g in left_out)
    assert substring_prefilter("lien") == ["ien", "lie"]


@pytest.mark.parametrize(
    "query",
    ["lien", "star wars", "ALIEN", "of the", "2: Judg", "Amélie", "x-men", "ali", "e 2", "s, t"],
)
def test_every_title_containing_the_query_is_found(movielens_db, query):
    containing = set(
        Item.objects.filter(is_hidden=False, title__icontains=query).values_list("id", flat=True)
    )
    found = set(catalog_search(query=query, sort="relevance").values_list("id", flat=True))
    assert containing, query
    assert containing <= found, sorted(containing - found)[:5]


def test_the_search_reads_the_indexes_not_every_item(movielens_db):
    plan = catalog_search(query="alien", sort="relevance").explain()
    assert "item_title_trgm_gin" in plan, plan
    assert "item_search_gin" in plan, plan
    assert "Seq Scan on catalog_item" not in plan, plan
