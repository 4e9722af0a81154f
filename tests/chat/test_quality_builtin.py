"""What the chat protocol measures, on the small hand-made catalog: soft wishes understood
without an LLM, the whole list leaning to them, reasons naming the reference, "why" answers
repeating the card."""

from __future__ import annotations

import pytest

from chat import services
from chat.intent import intent_parse

pytestmark = pytest.mark.django_db


def test_soft_wishes_are_wishes_and_nouns_are_filters(catalog):
    darker = intent_parse("something like Alien but darker")
    assert darker.references == [catalog["Alien"].pk] and darker.genres == []
    assert {"Thriller", "Crime", "Horror"} <= set(darker.prefer_genres)
    action = intent_parse("like Heat but with more action")
    assert action.prefer_genres == ["Action"] and action.genres == []
    assert intent_parse("something more family-friendly").prefer_genres == ["Children"]
    assert intent_parse("a little lighter please").prefer_genres == ["Comedy"]
    assert intent_parse("a comedy from the 90s").genres == ["Comedy"]
    assert intent_parse("nothing scary").exclude_genres == ["Horror"]
    assert intent_parse("no more sci-fi").exclude_genres == ["Sci-Fi"]
    assert intent_parse("more like the second one").prefer_genres == []


def test_a_wish_leans_the_whole_list_and_the_reason_says_so(alice, catalog, no_llm):
    conversation = services.conversation_create(user=alice)
    turn = services.message_post(
        conversation=conversation, user=alice, text="something like Alien but funnier"
    )
    assert len(turn.recommendations) == 6
    assert all("Comedy" in r.item.genres for r in turn.recommendations)
    assert all("Comedy, as you asked" in r.reason for r in turn.recommendations)


def test_the_reference_is_named_in_the_reasons(alice, catalog, no_llm):
    """A reference that is not one of the user's favourites: its neighbours say they are like
    it (the guard shows a query match that echoes the user's own words, as here)."""
    conversation = services.conversation_create(user=alice)
    anchor = catalog["Se7en"]
    turn = services.message_post(conversation=conversation, user=alice, text="something like Se7en")
    named = [r for r in turn.recommendations if "like Se7en" in r.reason]
    assert named, [r.reason for r in turn.recommendations]
    for rec in named:
        assert any(e.kind == "query_match" and e.item_id == anchor.pk for e in rec.evidence)


def test_why_repeats_the_card_it_asks_about(alice, catalog, no_llm):
    conversation = services.conversation_create(user=alice)
    turn = services.message_post(
        conversation=conversation, user=alice, text="something like Alien but funnier"
    )
    for card in turn.recommendations[:3]:
        title = card.item.title
        answer = services.message_post(
            conversation=conversation, user=alice, text=f"why did you suggest {title}?"
        )
        [got] = answer.recommendations
        assert got.item.pk == card.item.pk
        assert got.reason == card.reason
        assert [e.as_dict() for e in got.evidence] == [e.as_dict() for e in card.evidence]
    # an item the chat never showed is explained as the item page explains it
    never = catalog["Se7en"]
    assert never.pk not in {r.item.pk for r in turn.recommendations}
    answer = services.message_post(
        conversation=conversation, user=alice, text="why did you suggest Se7en?"
    )
    assert [r.item.pk for r in answer.recommendations] == [never.pk]
    assert answer.recommendations[0].reason


def test_a_wish_outside_the_vocabulary_leans_on_the_text_embeddings(alice, catalog, settings):
    from chat.candidates import candidates_gather, filters_for
    from chat.intent import State, state_merge
    from recommender.embeddings.services import embeddings_refresh
    from recommender.selectors import user_history_ids

    intent = intent_parse("something like Heat but more cartoonish")
    assert intent.wishes == ["more cartoonish"] and intent.prefer_genres == []
    state = state_merge(State(), intent)
    history = user_history_ids(user_id=alice.pk)
    filters = filters_for(state=state, history=history, standing_excludes=[], more=False)

    def order() -> list[int]:
        cset = candidates_gather(
            user=alice, state=state, filters=filters, history=history, size=40, tools=set()
        )
        return [c.item.pk for c in cset.candidates]

    settings.EMBEDDINGS_BACKEND = "none"  # no embeddings: the wish cannot move anything
    plain = order()
    settings.EMBEDDINGS_BACKEND = "local"
    embeddings_refresh()
    leaned = order()
    toy = catalog["Toy Story"].pk
    assert sorted(plain) == sorted(leaned)
    assert leaned.index(toy) < plain.index(toy), (plain.index(toy), leaned.index(toy))
