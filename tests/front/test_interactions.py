"""Rate / like / dismiss in place with htmx, history edits and deletes, CSRF, ownership."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from catalog.models import Interaction

from .conftest import HTMX


def _interact(client, item, **data):
    return client.post(reverse("item-interact", args=[item.pk]), data, **HTMX)


def test_rating_in_place_returns_the_actions_partial_and_a_trigger(user_client, user, catalog):
    response = _interact(user_client, catalog.up, kind="rating", value="4")
    assert response.status_code == 200
    assert response["HX-Trigger"] == "interactions-changed"
    page = response.content.decode()
    assert page.lstrip().startswith(f'<div class="actions" id="actions-{catalog.up.pk}"')
    assert '<option value="4" selected>' in page and "--r: 4" in page
    assert Interaction.objects.get(user=user, item=catalog.up, kind="rating").value == 4.0


def test_like_then_unlike_and_dismiss_then_undo(user_client, user, catalog):
    _interact(user_client, catalog.up, kind="like")
    assert Interaction.objects.filter(user=user, item=catalog.up, kind="like").exists()
    page = _interact(user_client, catalog.up, kind="dismiss").content.decode()
    assert "Not interested · Undo" in page
    assert not Interaction.objects.filter(user=user, item=catalog.up, kind="like").exists()
    _interact(user_client, catalog.up, kind="dismiss", remove="1")
    assert not Interaction.objects.filter(user=user, item=catalog.up).exists()


def test_dismissed_item_leaves_the_for_you_list(user_client, user, catalog):
    Interaction.objects.create(user=user, item=catalog.alien, kind="like")
    before = user_client.get(reverse("for-you"), **HTMX).content.decode()
    assert f'data-item-id="{catalog.up.pk}"' in before
    _interact(user_client, catalog.up, kind="dismiss")
    after = user_client.get(reverse("for-you"), **HTMX).content.decode()
    assert f'data-item-id="{catalog.up.pk}"' not in after


def test_without_htmx_the_form_redirects_back(user_client, catalog):
    response = user_client.post(
        reverse("item-interact", args=[catalog.up.pk]),
        {"kind": "like", "next": reverse("item-list") + "?q=qq"},
    )
    assert response.status_code == 302 and response["Location"] == "/items/?q=qq"
    evil = user_client.post(
        reverse("item-interact", args=[catalog.up.pk]),
        {"kind": "like", "next": "https://evil.example/"},
    )
    assert evil["Location"] == reverse("item-detail", args=[catalog.up.pk])


def test_bad_rating_is_an_error_partial_for_htmx(user_client, catalog):
    response = _interact(user_client, catalog.up, kind="rating", value="9")
    assert response.status_code == 400
    assert response["HX-Retarget"] == "#flash"
    assert 'role="alert"' in response.content.decode()


def test_hidden_item_cannot_be_rated(user_client, catalog):
    assert _interact(user_client, catalog.secret, kind="like").status_code == 404


def test_anonymous_cannot_interact(client, catalog):
    response = _interact(client, catalog.up, kind="like")
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert not Interaction.objects.filter(item=catalog.up).exists()


def test_get_is_not_allowed(user_client, catalog):
    assert user_client.get(reverse("item-interact", args=[catalog.up.pk])).status_code == 405


def test_csrf_is_enforced(user, catalog):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(reverse("item-interact", args=[catalog.up.pk]), {"kind": "like"}, **HTMX)
    assert response.status_code == 403
    page = client.get(reverse("item-list")).content.decode()
    token = client.cookies["csrftoken"].value
    assert "X-CSRFToken" in page  # htmx sends the token as a header
    ok = client.post(
        reverse("item-interact", args=[catalog.up.pk]),
        {"kind": "like"},
        HTTP_X_CSRFTOKEN=token,
        **HTMX,
    )
    assert ok.status_code == 200


def test_history_edit_and_delete(user_client, user, catalog):
    rating = Interaction.objects.create(user=user, item=catalog.alien, kind="rating", value=2)
    response = user_client.post(reverse("history-edit", args=[rating.pk]), {"value": "4.5"}, **HTMX)
    assert response.status_code == 200 and response["HX-Trigger"] == "interactions-changed"
    assert '<option value="4.5" selected>' in response.content.decode()
    rating.refresh_from_db()
    assert rating.value == 4.5
    response = user_client.post(reverse("history-delete", args=[rating.pk]), **HTMX)
    assert response.status_code == 200 and response.content == b""
    assert not Interaction.objects.filter(pk=rating.pk).exists()


def test_history_without_htmx_redirects(user_client, user, catalog):
    like = Interaction.objects.create(user=user, item=catalog.heat, kind="like")
    response = user_client.post(reverse("history-delete", args=[like.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("history")


def test_only_ratings_have_values(user_client, user, catalog):
    like = Interaction.objects.create(user=user, item=catalog.heat, kind="like")
    assert (
        user_client.post(
            reverse("history-edit", args=[like.pk]), {"value": "3"}, **HTMX
        ).status_code
        == 400
    )


@pytest.mark.parametrize("view", ["history-edit", "history-delete"])
def test_someone_elses_interaction_is_not_found(user_client, catalog, django_user_model, view):
    other = django_user_model.objects.get(username="qq_fan")
    theirs = Interaction.objects.filter(user=other).first()
    response = user_client.post(reverse(view, args=[theirs.pk]), {"value": "1"}, **HTMX)
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.value == 4.5


@pytest.mark.parametrize("value", ["1", "3", "0.5", "5"])
def test_history_edit_accepts_every_listed_value(user_client, user, catalog, value):
    rating = Interaction.objects.create(user=user, item=catalog.alien, kind="rating", value=2.5)
    response = user_client.post(reverse("history-edit", args=[rating.pk]), {"value": value}, **HTMX)
    assert response.status_code == 200
    rating.refresh_from_db()
    assert rating.value == float(value)


def test_a_no_more_genre_said_in_chat_leaves_the_for_you_list_until_forgotten(
    user_client, user, catalog, django_user_model
):
    from catalog.models import Preference

    def genres_listed():
        response = user_client.get(reverse("for-you"), **HTMX)
        assert response.status_code == 200
        return response, {g for rec in response.context["recs"] for g in rec.item.genres}

    _, before = genres_listed()
    assert "Horror" in before
    preference = Preference.objects.create(user=user, kind="exclude_genre", value="Horror")
    response, after = genres_listed()
    assert "Horror" not in after and after
    page = response.content.decode()
    assert "Leaving out" in page and 'aria-label="Stop leaving out Horror"' in page
    # someone else cannot forget it for this user
    other = Client()
    other.force_login(django_user_model.objects.create_user("qq_mallory"))
    url = reverse("chat-preference-delete", args=[preference.pk])
    assert other.post(url, **HTMX).status_code == 404
    assert Preference.objects.filter(pk=preference.pk).exists()
    # the owner forgets it in place: the list re-fetches itself and Horror is back
    response = user_client.post(url, **HTMX)
    assert response.status_code == 200 and response["HX-Trigger"] == "interactions-changed"
    assert not Preference.objects.filter(pk=preference.pk).exists()
    _, again = genres_listed()
    assert "Horror" in again
