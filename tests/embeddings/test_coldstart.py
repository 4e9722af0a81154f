"""Cold-start items: a brand-new item nobody has interacted with reaches the list of a user
whose favourites resemble it, explained by those favourites."""

from __future__ import annotations

import pytest

from catalog.models import Interaction, Item
from recommender import selectors as rec_selectors
from recommender.embeddings import coldstart
from recommender.embeddings.services import item_embedding_refresh

from .catalog_data import NEW_ITEM

pytestmark = pytest.mark.django_db


@pytest.fixture
def new_item(small_catalog) -> Item:
    mid, title, year, genres, description = NEW_ITEM
    item = Item.objects.create(
        external_id=mid, title=title, year=year, genres=genres, description=description
    )
    assert item_embedding_refresh(item_id=item.pk)
    return item


def _fan(django_user_model, item_ids, favourites: list[str], name: str):
    user = django_user_model.objects.create(username=name)
    for mid in favourites:
        Interaction.objects.create(user=user, item_id=item_ids[mid], kind=Interaction.Kind.LIKE)
    return user


def test_a_new_item_reaches_a_user_whose_favourites_resemble_it(
    new_item, item_ids, django_user_model
):
    # Apollo 13, The Martian, Armageddon: astronauts in trouble
    fan = _fan(django_user_model, item_ids, ["150", "134130", "1917"], "space_fan")
    version = rec_selectors.version_active()
    assert version is not None  # CF is trained, and never saw the new item
    recs = rec_selectors.recommendations_for_user(user=fan, n=10)
    by_id = {r.item.pk: r for r in recs}
    assert new_item.pk in by_id
    rec = by_id[new_item.pk]
    assert rec.source == "semantic"
    assert rec.rank <= 5
    history = [e for e in rec.evidence if e.kind == "history_item"]
    assert history and {e.item_id for e in history} <= {
        item_ids[m] for m in ["150", "134130", "1917"]
    }
    assert rec.reason.startswith("Similar to ") and rec.reason.endswith(" in your history")
    assert history[0].label in rec.reason
    # the rest of the list is still CF's
    assert sum(r.source == "cf" for r in recs) >= 5


def test_the_new_item_stays_out_of_an_unrelated_users_list(new_item, item_ids, django_user_model):
    # romantic comedies only: nothing about space
    fan = _fan(django_user_model, item_ids, ["597", "1307", "4246"], "romcom_fan")
    recs = rec_selectors.recommendations_for_user(user=fan, n=10)
    assert new_item.pk not in {r.item.pk for r in recs}


def test_cold_items_respect_filters_and_hidden_flags(new_item, item_ids):
    liked = [item_ids["150"], item_ids["134130"]]
    version = rec_selectors.version_active()
    cold = coldstart.cold_items_for_history(liked=liked, version=version, n=3)
    assert cold[0].item_id == new_item.pk  # (other items no fan liked are cold too)
    trained = set(version.items.filter(popularity__gt=0).values_list("item_id", flat=True))
    assert not trained & {c.item_id for c in cold}
    assert cold[0].neighbours[0][0] in liked
    from recommender.types import Filters

    old = coldstart.cold_items_for_history(
        liked=liked, version=version, filters=Filters(year_max=2000)
    )
    assert new_item.pk not in {c.item_id for c in old}
    Item.objects.filter(pk=new_item.pk).update(is_hidden=True)
    hidden = coldstart.cold_items_for_history(liked=liked, version=version)
    assert new_item.pk not in {c.item_id for c in hidden}


def test_an_item_with_interactions_but_unknown_to_the_model_is_still_cold(
    new_item, item_ids, django_user_model
):
    other = django_user_model.objects.create(username="early_adopter")
    Interaction.objects.create(user=other, item=new_item, kind=Interaction.Kind.LIKE)
    fan = _fan(django_user_model, item_ids, ["150", "134130", "1917"], "space_fan2")
    recs = rec_selectors.recommendations_for_user(user=fan, n=10)
    assert new_item.pk in {r.item.pk for r in recs}
