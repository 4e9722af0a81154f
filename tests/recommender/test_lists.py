"""recommender.lists.user_list: the one list the pages and the API serve (standing preferences
applied, cached until anything it depends on changes, the same with the cache off)."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Interaction, Item, Preference
from recommender.lists import serving_state_forget, user_list
from recommender.types import Filters

pytestmark = pytest.mark.django_db


@pytest.fixture
def shelf(django_user_model):
    fan = django_user_model.objects.create_user("ls_fan")
    items = {
        name: Item.objects.create(external_id=f"ls-{name}", title=f"Ls {name}", genres=genres)
        for name, genres in {
            "fright": ["Lshorror"],
            "laugh": ["Lscomedy"],
            "both": ["Lshorror", "Lscomedy"],
            "tears": ["Lsdrama"],
        }.items()
    }
    for item in items.values():  # popular enough to be listed without a model
        Interaction.objects.create(user=fan, item=item, kind="like")
    cache.clear()
    serving_state_forget()
    yield items
    cache.clear()
    serving_state_forget()


@pytest.fixture
def reader(django_user_model):
    return django_user_model.objects.create_user("ls_reader")


def _ids(found) -> set[int]:  # noqa: ANN001
    return {r.item.pk for r in found.recommendations}


@pytest.mark.parametrize("cache_seconds", [300, 0])
def test_standing_exclusions_apply_unless_the_filters_ask_for_the_genre(
    settings, shelf, reader, cache_seconds
):
    settings.API_RECOMMENDATIONS_CACHE_SECONDS = cache_seconds
    everything = user_list(user=reader, n=50)
    assert {shelf["fright"].pk, shelf["both"].pk, shelf["laugh"].pk} <= _ids(everything)
    assert everything.preferences == []
    said = Preference.objects.create(user=reader, kind="exclude_genre", value="Lshorror")
    Preference.objects.create(user=reader, kind="prefer_genre", value="Lsdrama")  # not shown
    found = user_list(user=reader, n=50)
    assert shelf["fright"].pk not in _ids(found) and shelf["both"].pk not in _ids(found)
    assert shelf["laugh"].pk in _ids(found)
    assert found.preferences == [said]
    asked = user_list(user=reader, n=50, filters=Filters(genres=("Lshorror",)))
    assert _ids(asked) == {shelf["fright"].pk, shelf["both"].pk}


def test_a_cached_list_is_served_until_the_history_changes(settings, shelf, reader):
    settings.API_RECOMMENDATIONS_CACHE_SECONDS = 300
    with CaptureQueriesContext(connection) as first:
        listed = user_list(user=reader, n=50)
    with CaptureQueriesContext(connection) as again:
        assert _ids(user_list(user=reader, n=50)) == _ids(listed)
    assert len(again) < len(first)  # the key's reads only, not the scoring
    assert shelf["tears"].pk in _ids(listed)
    Interaction.objects.create(user=reader, item=shelf["tears"], kind="dismiss")
    assert shelf["tears"].pk not in _ids(user_list(user=reader, n=50))
    # another n is another list
    assert len(user_list(user=reader, n=1).recommendations) == 1
