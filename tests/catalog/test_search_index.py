"""The catalog search's title substring match goes through the title trigrams' GIN index (so its
cost does not grow with the catalog) and still finds every title containing the query."""

from __future__ import annotations

import pytest

from catalog.models import Item
from catalog.selectors import catalog_search, substring_trigrams

pytestmark = pytest.mark.django_db


def test_substring_trigrams_are_the_unpadded_ones_of_each_word():
    assert substring_trigrams("Star Wars") == ["ars", "sta", "tar", "war"]
    assert substring_trigrams("lien") == ["ien", "lie"]
    # words too short for a trigram, or text whose case folding may differ in the database
    assert substring_trigrams("of a") == []
    assert substring_trigrams("Amélie") == []


@pytest.mark.parametrize(
    "query", ["lien", "star wars", "ALIEN", "of the", "2: Judg", "Amélie", "x-men", "ali"]
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
