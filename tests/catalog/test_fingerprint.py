"""The catalog's fingerprint, the key of every cache that holds items' rows: any change to the
set of items or to one item moves it, a read leaves it."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from catalog.models import Item
from catalog.selectors import catalog_fingerprint

pytestmark = pytest.mark.django_db(transaction=True)


def _item(external_id: str) -> Item:
    return Item.objects.create(external_id=external_id, title=f"Film {external_id}", year=1999)


def test_every_change_to_the_items_moves_the_fingerprint():
    first, second = _item("a"), _item("b")
    seen = [catalog_fingerprint()]
    assert catalog_fingerprint() == seen[-1]  # reading changes nothing

    _item("c")  # added
    seen.append(catalog_fingerprint())
    first.is_hidden = True  # edited (curation)
    first.save()
    seen.append(catalog_fingerprint())
    Item.objects.filter(pk=second.pk).delete()  # deleted, neither the newest id nor edit
    seen.append(catalog_fingerprint())
    assert len(set(seen)) == len(seen), seen


def test_a_flushed_and_refilled_catalog_does_not_match_its_old_key():
    """Django's flush truncates the table and restarts its ids: the same items imported again,
    even with the same edit time, must give a new key, or caches would serve the old rows."""
    edited = _item("a").updated_at
    before = catalog_fingerprint()
    call_command("flush", interactive=False, verbosity=0)
    _item("a")
    Item.objects.update(updated_at=edited)  # update() leaves auto_now alone
    after = catalog_fingerprint()
    assert Item.objects.get().pk == 1  # the ids did restart
    assert after != before
