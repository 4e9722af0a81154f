"""Semantic search where people meet it: the catalog page, the REST API and the chat's tool."""

from __future__ import annotations

import pytest

from chat.candidates import tool_search
from recommender.types import Filters

pytestmark = pytest.mark.django_db

QUERY = "a feel-good film about space"


def test_catalog_page_ranks_by_text_and_meaning(small_catalog, item_ids, client):
    response = client.get("/items/", {"q": QUERY})
    assert response.status_code == 200
    page = response.context["page"]
    top = [item.pk for item in list(page)[:3]]
    assert item_ids["60069"] in top  # WALL·E: none of the query's words in its title
    # a title word still wins with full text
    response = client.get("/items/", {"q": "Titanic"})
    assert list(response.context["page"])[0].pk == item_ids["1721"]
    # another sort keeps the full-text result set
    response = client.get("/items/", {"q": "Titanic", "sort": "title"})
    assert [i.pk for i in response.context["page"]] == [item_ids["1721"]]


def test_api_items_semantic_option(small_catalog, item_ids, client):
    plain = client.get("/api/v1/items/", {"q": QUERY}).json()
    assert plain["results"] == []  # full text alone: no item has all those words
    hybrid = client.get("/api/v1/items/", {"q": QUERY, "semantic": "true"}).json()
    ids = [row["id"] for row in hybrid["results"]]
    assert item_ids["60069"] in ids[:3]
    assert (
        client.get("/api/v1/items/", {"q": "shark", "semantic": "true"}).json()["results"][0]["id"]
        == item_ids["1387"]
    )


def test_chat_search_tool_is_hybrid(small_catalog, item_ids):
    recs = tool_search(query=QUERY, filters=Filters(), n=5)
    assert item_ids["60069"] in [r.item.pk for r in recs[:3]]
    assert all(e.kind == "query_match" for r in recs for e in r.evidence)
    recs = tool_search(
        query=QUERY, filters=Filters(exclude_ids=frozenset({item_ids["60069"]})), n=5
    )
    assert item_ids["60069"] not in [r.item.pk for r in recs]


def test_a_chat_turn_from_a_user_with_no_history_finds_by_meaning(
    small_catalog, item_ids, django_user_model, settings
):
    from chat import services as chat_services

    settings.OPENAI_BASE_URL = None  # the built-in pipeline
    settings.OPENAI_API_KEY = None
    newcomer = django_user_model.objects.create(username="wish_only")
    conversation = chat_services.conversation_create(user=newcomer)
    turn = chat_services.message_post(
        conversation=conversation, user=newcomer, text="a feel-good film about space"
    )
    ids = [r.item.pk for r in turn.recommendations]
    assert item_ids["60069"] in ids  # WALL·E, by meaning: no title or tag has those words
    rec = next(r for r in turn.recommendations if r.item.pk == item_ids["60069"])
    assert any(e.kind == "query_match" for e in rec.evidence)
