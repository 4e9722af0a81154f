"""Semantic and hybrid search on a small real catalog, as the pages, the API and the chat use it."""

from __future__ import annotations

import pytest

from recommender.embeddings import selectors
from recommender.types import Filters

from .catalog_data import by_theme

pytestmark = pytest.mark.django_db


def _top(recs, k: int) -> list[int]:
    return [r.item.pk for r in recs[:k]]


def test_a_feel_good_film_about_space(small_catalog, item_ids):
    recs = selectors.semantic_search(query="a feel-good film about space", n=5)
    space = {item_ids[m] for m in by_theme("space")}
    # no word of the query is in a title; meaning finds the space films, WALL·E the warmest
    assert item_ids["60069"] in _top(recs, 3)
    assert len(space & set(_top(recs, 5))) >= 4
    rec = recs[0]
    assert rec.source == "semantic"
    assert rec.evidence[0].kind == "query_match"
    assert rec.evidence[0].label == "a feel-good film about space"
    assert rec.reason.startswith("Matches")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("scary haunted hotel in the snow", "1258"),  # The Shining
        ("animated fish looking for his son in the ocean", "6377"),  # Finding Nemo
        ("soldiers on the beaches of Normandy in World War II", "2028"),  # Saving Private Ryan
        ("mafia family drama", "858"),  # The Godfather
        ("computer simulation hacker rebellion", "2571"),  # The Matrix
    ],
)
def test_semantic_queries_find_the_right_item(small_catalog, item_ids, query, expected):
    assert item_ids[expected] in _top(selectors.semantic_search(query=query, n=3), 3)


def test_filters_apply_to_semantic_search(small_catalog, item_ids):
    recs = selectors.semantic_search(
        query="space adventure", n=10, filters=Filters(year_min=2000, genres=("Sci-Fi",))
    )
    assert recs and all(r.item.year >= 2000 and "Sci-Fi" in r.item.genres for r in recs)
    excluded = frozenset({item_ids["134130"]})
    recs = selectors.semantic_search(
        query="stranded on Mars", n=10, filters=Filters(exclude_ids=excluded)
    )
    assert item_ids["134130"] not in _top(recs, 10)


def test_hybrid_ranks_exact_words_and_meaning(small_catalog, item_ids):
    # a title word: full text puts it first; meaning adds related films after it
    recs = selectors.hybrid_search(query="Titanic", n=5)
    assert recs[0].item.pk == item_ids["1721"]
    assert len(recs) > 1  # the semantic side adds more than the one word match
    # no word match at all: meaning alone
    recs = selectors.hybrid_search(query="robots in love among the stars", n=5)
    assert item_ids["60069"] in _top(recs, 3)
    # both agree: first
    recs = selectors.hybrid_search(query="shark", n=3)
    assert recs[0].item.pk == item_ids["1387"]


def test_hybrid_falls_back_to_full_text_without_embeddings(small_catalog, item_ids, settings):
    settings.EMBEDDINGS_BACKEND = "none"
    recs = selectors.hybrid_search(query="Titanic", n=5)
    assert _top(recs, 5) == [item_ids["1721"]]
    assert selectors.semantic_search(query="robots in love", n=5) == []


def test_a_user_who_only_typed_a_wish_gets_results(small_catalog, item_ids, django_user_model):
    newcomer = django_user_model.objects.create(username="newcomer")
    recs = selectors.recommendations_for_text(
        text="something scary with ghosts or demons", user=newcomer, n=5
    )
    horror = {item_ids[m] for m in by_theme("horror")}
    assert len(horror & set(_top(recs, 5))) >= 3
    assert all(r.evidence and r.evidence[0].kind == "query_match" for r in recs)
