"""Chat without an LLM: the built-in parser, candidates, template explanations, refinement."""

from __future__ import annotations

import pytest

from catalog.models import Interaction, Preference
from catalog.query_words import query_words
from chat import services
from chat.intent import intent_parse
from chat.models import Message
from chat.titles import title_resolve

pytestmark = pytest.mark.django_db


def test_parser_constraints_references_and_years(catalog):
    intent = intent_parse("something like Alien but funnier, not horror, from the 90s")
    assert intent.references == [catalog["Alien"].pk]
    assert intent.prefer_genres == ["Comedy"]
    assert intent.exclude_genres == ["Horror"]
    assert (intent.year_min, intent.year_max) == (1990, 1999)

    intent = intent_parse("a 90s crime film I haven't seen")
    assert intent.genres == ["Crime"] and (intent.year_min, intent.year_max) == (1990, 1999)
    assert intent_parse("nothing older than 1995").year_min == 1995
    assert intent_parse("made before 1990").year_max == 1989
    assert intent_parse("more like the second one").followup_ranks == [2]
    assert intent_parse("why did you suggest Heat?").question_item == catalog["Heat"].pk
    assert intent_parse("why did you pick the third one?").question_rank == 3
    no_more = intent_parse("no more horror please")
    assert no_more.exclude_genres == ["Horror"] and no_more.standing == [
        ("exclude_genre", "Horror")
    ]
    loved = intent_parse("I loved The Matrix and I hated Scream")
    assert (catalog["Matrix, The"].pk, "like") in loved.feedback
    assert (catalog["Scream"].pk, "dislike") in loved.feedback


@pytest.mark.parametrize(
    "text, bounds",
    [
        ("a 90s crime film", (1990, 1999)),
        ("something from the nineties", (1990, 1999)),
        ("a comedy not older than 2000", (2000, None)),
        ("nothing older than 1995 please", (1995, None)),
        ("no newer than 1990", (None, 1990)),
        ("made before 1990", (None, 1989)),
        ("up to 1985", (None, 1985)),
        ("after 1990 and not older than 1995", (1995, None)),
        ("a 90s thriller released after 1995", (1996, 1999)),
        ("between 1990 and 1995", (1990, 1995)),
        ("one from 1999", (1999, 1999)),
        ("post 2000 horror", (2001, None)),
        ("a pre 1980 western", (None, 1979)),
        ("1984", (None, None)),
    ],
)
def test_the_chat_reads_years_as_the_catalog_search_does(catalog, text, bounds):
    """One grammar of year words (catalog.query_words) for the chat and the catalog search: a
    message and the same words typed into the search box ask for the same years."""
    intent = intent_parse(text)
    assert (intent.year_min, intent.year_max) == bounds
    words = query_words(text)
    assert (words.year_min, words.year_max) == bounds
    # the year words are not searched as text
    assert not {"older", "newer", "nineties", "90s", "before"} & set(intent.query.split())


def test_fuzzy_titles(catalog):
    assert title_resolve("the matrix") == catalog["Matrix, The"].pk
    assert title_resolve("Pulp Fictoin") == catalog["Pulp Fiction"].pk
    assert title_resolve("Seven Samurai of Mars") is None
    assert title_resolve("Hidden Comedy Gem") is None  # hidden items are not in the index


def test_builtin_turn_is_grounded_and_labelled(alice, catalog, no_llm):
    conversation = services.conversation_create(user=alice)
    turn = services.message_post(
        conversation=conversation, user=alice, text="something like Alien but funnier"
    )
    assert turn.produced_by == "builtin"
    assert "built-in" in turn.notice
    ids = [r.item.pk for r in turn.recommendations]
    assert ids and len(ids) == len(set(ids))
    seen = {catalog[t].pk for t in ("Alien", "Heat", "Reservoir Dogs")}
    assert not seen & set(ids)
    assert catalog["hidden"].pk not in ids
    for rec in turn.recommendations:
        assert rec.reason and rec.evidence
    # the comedies come first for "funnier"
    assert "Comedy" in turn.recommendations[0].item.genres
    stored = Message.objects.get(pk=turn.message.pk)
    assert stored.produced_by == "builtin" and stored.results and stored.candidates
    assert stored.intent["references"] == [catalog["Alien"].pk]
    assert stored.pipeline_ms is not None


def test_refinement_over_turns_and_feedback(alice, catalog, no_llm):
    conversation = services.conversation_create(user=alice)
    services.message_post(conversation=conversation, user=alice, text="a crime film")
    turn = services.message_post(
        conversation=conversation, user=alice, text="only from the 90s, no comedy"
    )
    for rec in turn.recommendations:
        assert "Crime" in rec.item.genres and 1990 <= rec.item.year <= 1999
        assert "Comedy" not in rec.item.genres
    second = turn.recommendations[1].item
    turn3 = services.message_post(
        conversation=conversation, user=alice, text="why did you suggest the second one?"
    )
    assert [r.item.pk for r in turn3.recommendations] == [second.pk]
    # feedback in words is stored as interactions and a standing preference
    services.message_post(
        conversation=conversation, user=alice, text="I loved Fargo. No more horror."
    )
    assert Interaction.objects.filter(
        user=alice, item=catalog["Fargo"], kind="like", source="chat"
    ).exists()
    assert Preference.objects.filter(user=alice, kind="exclude_genre", value="Horror").exists()
    other = services.conversation_create(user=alice)
    turn = services.message_post(conversation=other, user=alice, text="anything")
    assert all("Horror" not in r.item.genres for r in turn.recommendations)


def test_empty_and_foreign_messages_are_refused(alice, bob, no_llm):
    from recsite.exceptions import ApplicationError

    conversation = services.conversation_create(user=alice)
    with pytest.raises(ApplicationError):
        services.message_post(conversation=conversation, user=alice, text="   ")
    with pytest.raises(ApplicationError):
        services.message_post(conversation=conversation, user=bob, text="hi")
