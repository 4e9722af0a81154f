"""What similar items keep between requests (an item's neighbour list per model version, its
candidates' rows and a user's favourites' rows per catalog fingerprint) follows the catalog: an
item hidden, edited or deleted shows in the next answer, in this process at once (the catalog's
signals; a deletion within the serving state's second) and in the others once their serving
state expires."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Item
from catalog.services import items_curate
from recommender import selectors
from recommender.evidence import PROFILE_ITEMS, profile_for
from recsite import memo

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_caches(trained_model):
    cache.clear()
    memo.clear_all()
    selectors.serving_state_forget()
    yield
    cache.clear()
    memo.clear_all()
    selectors.serving_state_forget()


def _alien() -> Item:
    return Item.objects.get(title="Alien", year=1979)


def _ids(recs) -> list[int]:
    return [r.item.pk for r in recs]


def test_similar_items_are_read_from_the_cache_the_second_time(fresh_caches, django_user_model):
    fan = django_user_model.objects.get(username="ml_1")
    alien = _alien()
    first = selectors.similar_items(item=alien, n=10, user=fan)
    with CaptureQueriesContext(connection) as queries:
        again = selectors.similar_items(item=alien, n=10, user=fan)
    # only the user's history is read (its packed row, stored by the first read): the version,
    # the neighbour list, the candidates' rows and the favourites' rows are kept
    assert [q["sql"][:42] for q in queries] == ["SELECT s.generation, s.packed_generation, "]
    assert [(r.item.pk, r.score, r.reason) for r in again] == [
        (r.item.pk, r.score, r.reason) for r in first
    ]
    assert [r.evidence for r in again] == [r.evidence for r in first]


def test_an_item_hidden_after_caching_leaves_similar_items_at_once(
    fresh_caches, django_capture_on_commit_callbacks
):
    alien = _alien()
    top = _ids(selectors.similar_items(item=alien, n=10))[0]
    with django_capture_on_commit_callbacks(execute=True):  # the curation signal, after commit
        items_curate(items=[top], is_hidden=True)
    assert top not in _ids(selectors.similar_items(item=alien, n=10))


def test_a_deleted_item_leaves_similar_items(fresh_caches, settings):
    """A deletion sends no signal: the fingerprint's deletions counter changes, seen when the
    serving state expires (here at once)."""
    settings.API_SERVING_STATE_SECONDS = 0
    alien = _alien()
    top = _ids(selectors.similar_items(item=alien, n=10))[0]
    Item.objects.filter(pk=top).delete()  # not the newest: the fingerprint does not change
    assert top not in _ids(selectors.similar_items(item=alien, n=10))


def _drop_action_from_a_favourite(fan, capture_on_commit) -> Item:  # noqa: ANN001
    """Take "Action" off one of ``fan``'s favourites, announced as an edit is (on commit)."""
    from catalog.services import items_changed_announce

    profile = selectors.user_history_ids(user_id=fan.pk).liked[:PROFILE_ITEMS]
    favourite = Item.objects.filter(pk__in=profile, genres__contains=["Action"]).first()
    with capture_on_commit(execute=True):
        favourite.genres = [g for g in favourite.genres if g != "Action"]
        favourite.save()
        items_changed_announce(item_ids=[favourite.pk])
    return favourite


def test_an_edited_favourite_changes_the_evidence_at_once(
    fresh_caches, django_user_model, django_capture_on_commit_callbacks
):
    """The genre evidence of similar items counts the user's favourites of each genre (their
    rows are cached); editing one favourite's genres changes the count in the next answer."""
    fan = django_user_model.objects.get(username="ml_1")
    alien = _alien()

    def action_weights() -> dict[int, float]:
        return {
            r.item.pk: e.weight
            for r in selectors.similar_items(item=alien, n=20, user=fan)
            for e in r.evidence
            if e.kind == "shared_attribute" and e.label == "genre: Action"
        }

    before = action_weights()
    favourite = _drop_action_from_a_favourite(fan, django_capture_on_commit_callbacks)
    after = action_weights()
    both = [pk for pk in before if pk in after and pk != favourite.pk]
    assert both, (before, after)
    assert all(before[pk] - after[pk] == 1.0 for pk in both), (before, after)


def test_another_process_sees_an_edited_favourite_when_its_serving_state_expires(
    fresh_caches, django_user_model, settings
):
    """No signal reaches another process: the catalog's fingerprint, re-read when the serving
    state expires (here at once), changes with the item's ``updated_at``, and so does the key
    of the favourites' rows."""
    settings.API_SERVING_STATE_SECONDS = 0
    fan = django_user_model.objects.get(username="ml_1")
    profile = selectors.user_history_ids(user_id=fan.pk).liked[:PROFILE_ITEMS]
    favourite = Item.objects.get(pk=profile[0])
    assert selectors.similar_items(item=_alien(), n=10, user=fan)  # the rows are cached
    favourite.title = "Zz Renamed Favourite"
    favourite.save()  # its signal never runs: the test's transaction is not committed
    built = profile_for(ids=profile, catalog_state=selectors.serving_state()[1])
    assert built.labels[favourite.pk].startswith("Zz Renamed Favourite")


def test_a_list_reads_the_favourites_once_and_follows_an_edit(
    fresh_caches, django_user_model, django_capture_on_commit_callbacks
):
    """A user's list keeps the favourites' profile and the candidates' rows per catalog
    fingerprint: the second list reads no item row, with the same evidence, and editing a
    favourite's genres (the fingerprint moves) changes the genre counts of the next list."""
    fan = django_user_model.objects.get(username="ml_1")

    def listed() -> tuple[list, list[str]]:
        with CaptureQueriesContext(connection) as queries:
            recs = selectors.recommendations_for_user(user=fan, n=20)
        return recs, [q["sql"] for q in queries if "catalog_item i" in q["sql"]]

    def action_weights(recs) -> dict[int, float]:
        return {
            r.item.pk: e.weight
            for r in recs
            for e in r.evidence
            if e.kind == "shared_attribute" and e.label == "genre: Action"
        }

    first, first_reads = listed()
    again, again_reads = listed()
    assert len(first_reads) == 2, first_reads  # the facts and rows, the curated items
    assert again_reads == [], again_reads
    assert [(r.item.pk, r.reason, r.evidence) for r in again] == [
        (r.item.pk, r.reason, r.evidence) for r in first
    ]
    _drop_action_from_a_favourite(fan, django_capture_on_commit_callbacks)
    edited, edited_reads = listed()
    assert len(edited_reads) == 2, edited_reads  # a new fingerprint: read again
    before, after = action_weights(again), action_weights(edited)
    both = [pk for pk in before if pk in after]
    assert both, (before, after)
    assert all(before[pk] - after[pk] == 1.0 for pk in both), (before, after)
