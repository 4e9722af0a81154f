"""front/htmx.py as every page uses it: errors go to the alert region under htmx, redirects
only follow a ``next`` on this site (the chat's included)."""

from __future__ import annotations

from django.urls import reverse

from catalog.models import Preference

from .conftest import HTMX

EVIL = "https://evil.example/phish"


def test_chat_feedback_never_redirects_off_site(user_client, catalog):
    url = reverse("chat-feedback", args=[catalog.alien.pk])
    response = user_client.post(url, {"kind": "like", "next": EVIL})
    assert response.status_code == 302 and response["Location"] == reverse("chat")
    inside = reverse("item-detail", args=[catalog.alien.pk])
    response = user_client.post(url, {"kind": "dismiss", "next": inside})
    assert response.status_code == 302 and response["Location"] == inside


def test_a_next_that_is_no_path_from_the_root_goes_to_the_default(user_client, catalog):
    """``redirect()`` reads a bare word as a view name: "abc" was a 500."""
    url = reverse("chat-feedback", args=[catalog.alien.pk])
    for junk in ("abc", "-1", "5", "1e309", "history", "//evil.example", "/\\evil.example"):
        response = user_client.post(url, {"kind": "like", "next": junk})
        assert response.status_code == 302 and response["Location"] == reverse("chat"), junk
    item_url = reverse("item-interact", args=[catalog.alien.pk])
    response = user_client.post(item_url, {"kind": "like", "next": "abc"})
    assert response.status_code == 302 and response["Location"].startswith("/"), response


def test_chat_errors_under_htmx_go_to_the_alert_region(user_client, catalog):
    url = reverse("chat-feedback", args=[catalog.alien.pk])
    response = user_client.post(url, {"kind": "shout"}, **HTMX)
    assert response.status_code == 400
    assert response["HX-Retarget"] == "#flash" and response["HX-Reswap"] == "innerHTML"
    assert 'role="alert"' in response.content.decode()
    hidden = reverse("chat-feedback", args=[catalog.secret.pk])
    response = user_client.post(hidden, {"kind": "like"}, **HTMX)
    assert response.status_code == 404 and response["HX-Retarget"] == "#flash"


def test_chat_errors_without_javascript_say_so_on_the_page_they_return_to(user_client, catalog):
    response = user_client.post(reverse("chat-send"), {"text": "  "}, follow=True)
    assert response.redirect_chain[0] == (reverse("chat"), 302)
    assert "say something first" in response.content.decode()


def test_forgetting_a_preference_without_javascript_stays_on_site(user_client, user, catalog):
    preference = Preference.objects.create(user=user, kind="exclude_genre", value="Horror")
    url = reverse("chat-preference-delete", args=[preference.pk])
    response = user_client.post(url, {"next": EVIL})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert not Preference.objects.filter(pk=preference.pk).exists()
    again = user_client.post(url, {"next": reverse("history")}, follow=True)
    assert again.redirect_chain[0] == (reverse("history"), 302)
    assert "preference not found" in again.content.decode()
