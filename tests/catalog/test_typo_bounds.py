"""The typo layer of search is bounded whatever the catalog's size: it scores nothing when the
full-text and substring layers already fill a page, and at most a limit of titles otherwise,
those sharing the query's rarest trigrams first, so a typo still finds its title when every
title shares the query's common trigrams (a catalog of "Item N")."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Item
from catalog.selectors import (
    catalog_search,
    trigram_frequencies_forget,
    trigrams,
    typo_candidates,
    typo_matches,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def numbered():
    """600 titles "Item 0" .. "Item 599": all share "  i", " it", "ite", "tem", "em "."""
    Item.objects.bulk_create(
        Item(external_id=f"n{i}", title=f"Item {i}", year=2000, genres=["Drama"])
        for i in range(600)
    )
    trigram_frequencies_forget()
    yield
    trigram_frequencies_forget()


def _ids(titles):
    return set(Item.objects.filter(title__in=titles).values_list("id", flat=True))


def test_a_typo_finds_its_title_when_the_candidates_exceed_the_limit(numbered):
    # "itm", "tme", "me " are in no title, "123" in one: read before "23 " and the common ones
    grams = trigrams("Itme 123")
    # the query's rarest trigrams that can still score are in more titles than the limit
    assert Item.objects.filter(typo_candidates(grams, limit=10_000)).count() > 5
    found = typo_matches(grams, max_candidates=5)
    assert next(iter(found)) == Item.objects.get(title="Item 123").pk
    assert len(found) <= 5


def test_the_candidates_are_at_most_the_limit(numbered):
    grams = trigrams("Item 5x")
    unbounded = Item.objects.filter(typo_candidates(grams, limit=10_000)).count()
    assert unbounded > 100  # every title shares the rarest trigrams that can still score
    assert Item.objects.filter(typo_candidates(grams, limit=100)).count() == 100


def test_the_typo_layer_scores_nothing_when_the_other_layers_fill_a_page(numbered):
    grams = trigrams("Item 1")
    filling = Item.objects.filter(title__icontains="Item 1")  # 111 titles
    assert typo_matches(grams, unless_found=filling) == {}
    few = Item.objects.filter(title__in=["Item 1", "Item 2"])
    assert typo_matches(grams, unless_found=few)


def test_the_typo_layer_scores_nothing_when_a_hit_is_the_title_asked_for(numbered):
    """A query that names a title exactly is no typo: "item 42" found "Item 42" (and "Item
    420".."Item 429"), so the titles one digit away are not scored."""
    grams = trigrams("item 42")
    found = Item.objects.filter(title__icontains="item 42")
    assert 0 < found.count() < 20
    assert typo_matches(grams, unless_found=found, unless_title="item 42") == {}
    # another query with the same hits and trigrams names no title: the layer scores them
    assert typo_matches(grams, unless_found=found, unless_title="item 42 ")
    found_titles = [item.title for item in catalog_search(query="Item 42", sort="relevance")]
    assert found_titles[0] == "Item 42"
    assert all("42" in t for t in found_titles), found_titles  # no "Item 24" from the layer


def test_a_query_that_fills_the_page_reads_no_candidate(numbered):
    with CaptureQueriesContext(connection) as ctx:
        top = [item.title for item in catalog_search(query="Item 1", sort="relevance")[:3]]
    assert top[0] == "Item 1"  # with 110 more titles containing it
    typo = [
        q["sql"] for q in ctx.captured_queries if "unnest(catalog_item.title_trigrams)" in q["sql"]
    ]
    assert len(typo) == 1
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + typo[0])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "One-Time Filter" in plan, plan
    assert "never executed" in plan, plan  # the candidates are not read, nor scored
