"""Every page renders, for the right people, with the right content."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from catalog.models import Interaction

from .conftest import HTMX


def _html(response) -> str:
    return response.content.decode()


def test_base_layout_links_chat_and_serves_htmx_from_static(client, catalog):
    page = _html(client.get(reverse("item-list")))
    assert re.search(r'<a [^>]*href="/chat/"[^>]*>\s*Chat\s*</a>', page), "no link to the chat"
    assert re.search(r'<script src="/static/vendor/htmx\.min\.js"', page)
    assert "unpkg" not in page and "cdn" not in page.lower()
    assert "Sign up" in page and "Log in" in page


def test_every_page_names_the_icon_and_favicon_ico_leads_to_it(client, catalog, settings):
    from pathlib import Path

    page = client.get(reverse("home")).content.decode()
    icon = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page)
    assert icon, "no icon link in the base layout"
    # pages that name no icon (the admin's) make the browser ask for /favicon.ico
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"] == icon.group(1)
    svg = Path(settings.BASE_DIR) / "static" / "recsite" / "favicon.svg"
    assert svg.read_text().startswith("<svg")


def test_home_anonymous_shows_popular_with_reasons(client, catalog):
    response = client.get(reverse("home"))
    assert response.status_code == 200
    page = _html(response)
    assert "Popular on recsite" in page
    assert "Qqsecret" not in page
    assert '<details class="why">' in page


def test_home_new_user_is_asked_to_pick_favourites(user_client, catalog):
    page = _html(user_client.get(reverse("home")))
    assert "Tell us what you like" in page
    assert reverse("onboarding") in page


def test_home_user_with_history_gets_a_personal_list(user_client, user, catalog):
    Interaction.objects.create(user=user, item=catalog.alien, kind="like")
    page = _html(user_client.get(reverse("home")))
    assert "Tell us what you like" not in page
    assert 'hx-get="/for-you/"' in page and "interactions-changed from:body" in page
    # what the user already liked is never recommended back
    assert f'data-item-id="{catalog.alien.pk}"' not in page


def test_for_you_partial_is_login_only(user_client, catalog):
    assert Client().get(reverse("for-you")).status_code == 302
    response = user_client.get(reverse("for-you"), **HTMX)
    assert response.status_code == 200
    page = _html(response)
    assert page.lstrip().startswith('<div id="for-you"') and "<html" not in page


def test_onboarding_shows_a_selection_and_records_likes(user_client, user, catalog):
    page = _html(user_client.get(reverse("onboarding")))
    assert 'type="checkbox" name="items"' in page
    response = user_client.post(
        reverse("onboarding"), {"items": [catalog.alien.pk, catalog.heat.pk]}
    )
    assert response.status_code == 302 and response["Location"] == reverse("home")
    kinds = set(Interaction.objects.filter(user=user).values_list("item_id", "kind"))
    assert kinds == {(catalog.alien.pk, "like"), (catalog.heat.pk, "like")}


def test_onboarding_refuses_nothing_and_hidden_items(user_client, user, catalog):
    page = _html(user_client.post(reverse("onboarding"), {}))
    assert "Pick at least one favourite" in page
    user_client.post(reverse("onboarding"), {"items": [catalog.secret.pk]})
    assert not Interaction.objects.filter(user=user).exists()


def test_onboarding_search_and_catalog_search_survive_nul(user_client, catalog):
    page = user_client.get(reverse("onboarding"), {"q": "Qqalien\x00"})
    assert page.status_code == 200
    assert "Qqalien Xenomorph" in page.content.decode()
    from catalog import selectors

    titles = [item.title for item in selectors.catalog_search(query="qqalien\x00xeno")]
    assert "Qqalien Xenomorph" in titles


def test_a_form_with_too_many_fields_gets_the_site_s_400_page(user_client, user, catalog):
    items = [str(catalog.alien.pk)] * 1001  # over DATA_UPLOAD_MAX_NUMBER_FIELDS
    response = user_client.post(reverse("onboarding"), {"items": items})
    assert response.status_code == 400
    assert "That request could not be read" in response.content.decode()
    assert not Interaction.objects.filter(user=user).exists()


def test_onboarding_requires_login(client, db):
    response = client.get(reverse("onboarding"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_item_detail(user_client, user, catalog):
    Interaction.objects.create(user=user, item=catalog.aliens, kind="like")
    Interaction.objects.create(user=user, item=catalog.alien, kind="rating", value=4)
    page = _html(user_client.get(reverse("item-detail", args=[catalog.alien.pk])))
    assert "Qqalien Xenomorph" in page and "1979" in page
    assert "Your rating" in page and '<option value="4" selected>' in page
    assert "You rated this" in page and "4/5" in page  # not "why this would be recommended"
    assert "Similar items" in page and "Why this would be recommended to you" not in page
    other = _html(user_client.get(reverse("item-detail", args=[catalog.heat.pk])))
    assert "Why this would be recommended to you" in other
    anonymous = _html(Client().get(reverse("item-detail", args=[catalog.alien.pk])))
    assert "Log in to rate" in anonymous and "Why this would be" not in anonymous


def test_hidden_item_is_not_found(client, catalog):
    assert client.get(reverse("item-detail", args=[catalog.secret.pk])).status_code == 404


def test_history_lists_rates_likes_and_dismissals(user_client, user, catalog):
    Interaction.objects.create(user=user, item=catalog.alien, kind="rating", value=3.5)
    Interaction.objects.create(user=user, item=catalog.heat, kind="like")
    Interaction.objects.create(user=user, item=catalog.up, kind="dismiss")
    page = _html(user_client.get(reverse("history")))
    assert "Qqalien" in page and "Qqheat" in page and "Qqup" in page
    assert '<option value="3.5" selected>' in page
    only = _html(user_client.get(reverse("history"), {"kind": "dismiss"}))
    assert "Qqup" in only and "Qqheat" not in only


def test_history_requires_login(client, db):
    assert client.get(reverse("history")).status_code == 302


def test_signup_logs_in_and_goes_to_onboarding(client, db, django_user_model):
    page = _html(client.get(reverse("signup")))
    assert 'name="csrfmiddlewaretoken"' in page and 'for="id_username"' in page
    response = client.post(
        reverse("signup"),
        {"username": "qq_newbie", "password1": "tall-Purple-41", "password2": "tall-Purple-41"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("onboarding")
    assert django_user_model.objects.filter(username="qq_newbie").exists()
    assert client.get(reverse("onboarding")).status_code == 200


def test_signup_reports_errors(client, db):
    page = _html(
        client.post(reverse("signup"), {"username": "x", "password1": "a", "password2": "b"})
    )
    assert "field-error" in page


def test_login_and_logout(client, user):
    page = _html(client.get(reverse("login")))
    assert 'for="id_password"' in page
    response = client.post(reverse("login"), {"username": "qq_alice", "password": "x-Secret-123"})
    assert response.status_code == 302
    assert "qq_alice" in _html(client.get(reverse("home")))
    assert client.get(reverse("logout")).status_code == 405  # logging out is a POST
    client.post(reverse("logout"))
    assert "Log in" in _html(client.get(reverse("home")))


@pytest.mark.parametrize("name", ["home", "item-list", "signup", "login"])
def test_public_pages_render(client, catalog, name):
    assert client.get(reverse(name)).status_code == 200


def test_item_why_partial_and_no_javascript_fallback(user_client, user, catalog):
    Interaction.objects.create(user=user, item=catalog.aliens, kind="like")
    page = _html(user_client.get(reverse("item-detail", args=[catalog.alien.pk])))
    assert f'hx-get="{reverse("item-why", args=[catalog.alien.pk])}"' in page
    assert '<a href="?why=1">Show why</a>' in page
    partial = _html(user_client.get(reverse("item-why", args=[catalog.alien.pk]), **HTMX))
    assert partial.lstrip().startswith('<section id="why"') and "<html" not in partial
    assert 'class="reason"' in partial and 'class="evidence"' in partial
    inline = _html(user_client.get(reverse("item-detail", args=[catalog.alien.pk]), {"why": 1}))
    assert 'class="evidence"' in inline and "Gathering the evidence" not in inline
    assert Client().get(reverse("item-why", args=[catalog.alien.pk])).status_code == 302


def test_cached_list_follows_curation(
    user_client, user, catalog, django_capture_on_commit_callbacks
):
    Interaction.objects.create(user=user, item=catalog.alien, kind="like")
    first = _html(user_client.get(reverse("for-you"), **HTMX))
    assert f'data-item-id="{catalog.up.pk}"' in first
    from catalog.services import items_curate

    # curation announces itself after commit, which clears this process's serving state
    with django_capture_on_commit_callbacks(execute=True):
        items_curate(items=[catalog.up.pk], is_hidden=True)
    again = _html(user_client.get(reverse("for-you"), **HTMX))
    assert f'data-item-id="{catalog.up.pk}"' not in again


def test_curated_items_are_marked(user_client, user, catalog):
    Interaction.objects.create(user=user, item=catalog.alien, kind="like")
    from catalog.services import items_curate

    items_curate(items=[catalog.up.pk], is_pinned=True)
    items_curate(items=[catalog.heat.pk], is_featured=True)
    page = _html(user_client.get(reverse("home")))
    assert '<span class="badge pinned"' in page and '<span class="badge featured"' in page
    assert "Pinned by staff" in page
