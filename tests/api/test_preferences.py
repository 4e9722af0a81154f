"""My standing preferences over the API (me/preferences/, kept by the catalog): create, list,
delete, bad input, and the permission matrix."""

from __future__ import annotations

import pytest

from catalog.models import Preference

from .conftest import assert_error

pytestmark = pytest.mark.django_db


def test_preferences_create_list_delete(user_client, user, catalog):
    r = user_client.post("/api/v1/me/preferences/", {"kind": "exclude_genre", "value": "zhorror"})
    assert r.status_code == 201, r.content
    assert r.json()["value"] == "Zhorror"  # normalised to the catalog's genre
    again = user_client.post(
        "/api/v1/me/preferences/", {"kind": "exclude_genre", "value": "Zhorror"}
    )
    assert again.json()["id"] == r.json()["id"]  # idempotent
    listing = user_client.get("/api/v1/me/preferences/").json()
    assert [(p["kind"], p["value"]) for p in listing] == [("exclude_genre", "Zhorror")]
    assert user_client.delete(f"/api/v1/me/preferences/{r.json()['id']}/").status_code == 204
    assert not Preference.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    "payload",
    [{"kind": "exclude_genre", "value": "Not A Genre"}, {"kind": "love", "value": "Zsci"}, {}],
)
def test_preferences_reject_bad_input(user_client, catalog, payload):
    assert_error(user_client.post("/api/v1/me/preferences/", payload), 400)


PREF_MATRIX = {"anon": 401, "owner": 204, "other": 404, "staff": 404}


@pytest.mark.parametrize("who", PREF_MATRIX)
def test_preference_permission_matrix(clients, user, catalog, who):
    pref = Preference.objects.create(user=user, kind="exclude_genre", value="Zhorror")
    r = clients[who].delete(f"/api/v1/me/preferences/{pref.pk}/")
    if PREF_MATRIX[who] >= 400:
        assert_error(r, PREF_MATRIX[who])
        assert Preference.objects.filter(pk=pref.pk).exists()
        if who != "anon":
            assert clients[who].get("/api/v1/me/preferences/").json() == []
    else:
        assert r.status_code == 204
