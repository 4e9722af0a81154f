"""ModelRows builds the instance QuerySet iteration would give for the same row."""

from __future__ import annotations

import pytest
from django.db import connection

from catalog.models import Item
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
