"""Staff curation in the Django admin."""

from __future__ import annotations

import pytest
from django.urls import reverse

from catalog.models import Interaction, Item


@pytest.fixture
def items(db, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="x-Secret-123")
    alien = Item.objects.create(
        external_id="a1", title="Alien", year=1979, genres=["Horror", "Sci-Fi"]
    )
    heat = Item.objects.create(external_id="h1", title="Heat", year=1995, genres=["Crime"])
    up = Item.objects.create(external_id="u1", title="Up", year=2009, genres=["Animation"])
    Interaction.objects.create(user=user, item=alien, kind="rating", value=5)
    Interaction.objects.create(user=user, item=heat, kind="like")
    return alien, heat, up


def _changelist(admin_client, **params):
    return admin_client.get(reverse("admin:catalog_item_changelist"), params)


def test_item_list_search_and_filters(admin_client, items):
    alien, heat, up = items
    # titles as the changelist links them: a bare "Up" also turns up inside a random CSRF token
    page = _changelist(admin_client, q="Alien").content.decode()
    assert ">Alien<" in page and ">Heat<" not in page
    page = _changelist(admin_client, genre="Crime").content.decode()
    assert ">Heat<" in page and ">Alien<" not in page
    page = _changelist(admin_client, decade="1990").content.decode()
    assert ">Heat<" in page and ">Up<" not in page
    Item.objects.filter(pk=up.pk).update(is_hidden=True)
    page = _changelist(admin_client, is_hidden__exact="1").content.decode()
    assert ">Up<" in page and "Heat" not in page


def test_interaction_count_links_to_the_items_interactions(admin_client, items):
    alien, heat, up = items
    response = _changelist(admin_client, o="4")  # interaction count column
    assert response.status_code == 200
    url = reverse("admin:catalog_interaction_changelist") + f"?item__id__exact={alien.pk}"
    assert f'href="{url}">1</a>' in response.content.decode()
    listing = admin_client.get(url).content.decode()
    assert "Alien" in listing and "Heat" not in listing


def test_interactions_browsable_per_user(admin_client, items, django_user_model):
    user = django_user_model.objects.get(username="viewer")
    url = reverse("admin:catalog_interaction_changelist")
    page = admin_client.get(url, {"user__id__exact": user.pk}).content.decode()
    assert "Alien" in page and "Heat" in page


@pytest.mark.parametrize(
    "action,field,value",
    [("hide", "is_hidden", True), ("feature", "is_featured", True), ("boost", "boost", 1.0)],
)
def test_bulk_actions(admin_client, items, action, field, value):
    alien, heat, up = items
    response = admin_client.post(
        reverse("admin:catalog_item_changelist"),
        {"action": action, "_selected_action": [alien.pk, heat.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "2 item(s)" in response.content.decode()
    assert getattr(Item.objects.get(pk=alien.pk), field) == value
    assert getattr(Item.objects.get(pk=heat.pk), field) == value
    assert getattr(Item.objects.get(pk=up.pk), field) != value


def test_unhide_action(admin_client, items):
    alien, heat, up = items
    Item.objects.update(is_hidden=True)
    admin_client.post(
        reverse("admin:catalog_item_changelist"),
        {"action": "unhide", "_selected_action": [up.pk]},
    )
    assert list(Item.objects.filter(is_hidden=False)) == [up]


def test_inline_editing_of_curation_flags(admin_client, items):
    alien, heat, up = items
    ordered = list(Item.objects.order_by("title"))  # the changelist's default order
    data = {
        "form-TOTAL_FORMS": str(len(ordered)),
        "form-INITIAL_FORMS": str(len(ordered)),
        "_save": "Save",
    }
    for i, item in enumerate(ordered):
        data[f"form-{i}-id"] = str(item.pk)
        data[f"form-{i}-boost"] = "2.5" if item == heat else "0"
        if item == up:
            data[f"form-{i}-is_pinned"] = "on"
    response = admin_client.post(reverse("admin:catalog_item_changelist"), data)
    assert response.status_code == 302
    heat.refresh_from_db()
    up.refresh_from_db()
    assert heat.boost == 2.5 and up.is_pinned and not heat.is_pinned


def test_non_staff_cannot_curate(client, items, django_user_model):
    django_user_model.objects.create_user("mallory", password="x-Secret-123")
    client.login(username="mallory", password="x-Secret-123")
    alien = items[0]
    client.post(
        reverse("admin:catalog_item_changelist"),
        {"action": "hide", "_selected_action": [alien.pk]},
    )
    assert not Item.objects.get(pk=alien.pk).is_hidden
