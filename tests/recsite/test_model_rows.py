"""ModelRows builds the instance QuerySet iteration would give for the same row."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models.signals import post_init

from catalog.models import Interaction, Item
from recsite.model_rows import ModelRows

pytestmark = pytest.mark.django_db

DEFERRED = ("search_vector", "title_trigrams", "description", "updated_at")


@pytest.mark.parametrize("exclude", [(), DEFERRED])
def test_an_instance_is_the_orms(exclude):
    item = Item.objects.create(
        external_id="m1",
        title="Matrix, The",
        year=1999,
        description="A hacker learns the truth.",
        genres=["Sci-Fi", "Action"],
        tags=["cyberpunk"],
        links={"imdb": "https://example.org/tt0133093"},
        metadata={"runtime": 136},
        boost=0.5,
    )
    rows = ModelRows(Item, exclude=exclude)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {rows.columns('i')} FROM catalog_item i WHERE i.id = %s", [item.pk])
        built = rows.instance(cursor.fetchone())
    want = Item.objects.defer(*exclude).get(pk=item.pk)
    assert built.get_deferred_fields() == want.get_deferred_fields() == set(exclude)
    fields = {k: v for k, v in want.__dict__.items() if k != "_state"}
    assert {k: v for k, v in built.__dict__.items() if k != "_state"} == fields
    assert built.links == {"imdb": "https://example.org/tt0133093"} and built.genres[0] == "Sci-Fi"
    assert not built._state.adding and built._state.db == "default"
    if exclude:  # a deferred field loads on access, as the ORM's does
        assert built.description == "A hacker learns the truth."


def _built(rows: ModelRows, model, pk: int):  # noqa: ANN001
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {rows.columns('t')} FROM {model._meta.db_table} t WHERE t.id = %s", [pk]
        )
        return rows.instance(cursor.fetchone())


def test_a_receiver_of_post_init_still_hears_of_each_instance():
    item = Item.objects.create(external_id="m2", title="Heat", year=1995)
    heard = []

    def receiver(sender, instance, **kwargs):  # noqa: ANN001
        heard.append((sender, instance.pk, instance.title))

    post_init.connect(receiver, sender=Item)
    try:
        built = _built(ModelRows(Item, exclude=DEFERRED), Item, item.pk)
    finally:
        post_init.disconnect(receiver, sender=Item)
    assert heard == [(Item, item.pk, "Heat")]
    assert built.get_deferred_fields() == set(DEFERRED) and not built._state.adding


def test_a_model_with_a_foreign_key_is_the_orms(django_user_model):
    fan = django_user_model.objects.create_user("mr_fan")
    item = Item.objects.create(external_id="m3", title="Ronin", year=1998)
    liked = Interaction.objects.create(user=fan, item=item, kind="rating", value=4.5)
    built = _built(ModelRows(Interaction), Interaction, liked.pk)
    want = Interaction.objects.get(pk=liked.pk)
    assert {k: v for k, v in built.__dict__.items() if k != "_state"} == {
        k: v for k, v in want.__dict__.items() if k != "_state"
    }
    assert built.user == fan and built.item.title == "Ronin"  # the related rows load on access
    built.user_id = django_user_model.objects.create_user("mr_other").pk
    assert built.user.username == "mr_other"  # a changed id drops the cached user, as Django's
