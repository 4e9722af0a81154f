"""My history (interactions): every endpoint's success and failure paths and the permission
matrix (anonymous, owner, another user, staff) for the object endpoint."""

from __future__ import annotations

import pytest

from catalog.models import Interaction

from .conftest import assert_error

pytestmark = pytest.mark.django_db


def test_list_is_mine_only_newest_first_and_filterable(user_client, user, other_user, catalog):
    Interaction.objects.create(user=other_user, item=catalog["comedy"], kind="like")
    user_client.post("/api/v1/me/history/", {"item_id": catalog["space"].pk, "kind": "like"})
    user_client.post(
        "/api/v1/me/history/", {"item_id": catalog["alien"].pk, "kind": "rating", "value": 4.5}
    )
    r = user_client.get("/api/v1/me/history/")
    assert r.status_code == 200
    assert "private" in r["Cache-Control"]
    results = r.json()["results"]
    assert [i["item"]["id"] for i in results] == [catalog["alien"].pk, catalog["space"].pk]
    assert results[0] | {"id": 0, "timestamp": ""} == {
        "id": 0,
        "timestamp": "",
        "item": {
            "id": catalog["alien"].pk,
            "title": "Zorblax Alien Hunt",
            "display_title": "Zorblax Alien Hunt",
            "year": 1979,
            "genres": ["Zsci", "Zhorror"],
        },
        "kind": "rating",
        "value": 4.5,
        "source": "api",
    }
    likes = user_client.get("/api/v1/me/history/", {"kind": "like"}).json()["results"]
    assert [i["kind"] for i in likes] == ["like"]
    assert_error(user_client.get("/api/v1/me/history/", {"kind": "purchase"}), 400)


def test_create_replaces_and_resolves_contradictions(user_client, user, catalog):
    item = catalog["space"].pk
    url = "/api/v1/me/history/"
    assert user_client.post(url, {"item_id": item, "kind": "rating", "value": 3}).status_code == 201
    r = user_client.post(url, {"item_id": item, "kind": "rating", "value": 4.74})
    assert r.status_code == 201 and r.json()["value"] == 4.5  # rounded to half stars
    assert Interaction.objects.filter(user=user, item_id=item, kind="rating").count() == 1
    user_client.post(url, {"item_id": item, "kind": "like"})
    user_client.post(url, {"item_id": item, "kind": "dismiss"})
    kinds = set(Interaction.objects.filter(user=user, item_id=item).values_list("kind", flat=True))
    assert kinds == {"rating", "dismiss"}


@pytest.mark.parametrize(
    "payload, status",
    [
        ({"kind": "like"}, 400),
        ({"item_id": "x", "kind": "like"}, 400),
        ({"item_id": 1, "kind": "buy"}, 400),
        ({"item_id": 1, "kind": "rating"}, 400),
        ({"item_id": 1, "kind": "rating", "value": 7}, 400),
        ({"item_id": 1, "kind": "rating", "value": "NaN"}, 400),
        ({"item_id": 1, "kind": "like", "value": 4}, 400),
        ({"item_id": 999999999, "kind": "like"}, 404),
    ],
)
def test_create_rejects_bad_input(user_client, catalog, payload, status):
    assert_error(user_client.post("/api/v1/me/history/", payload), status)


def test_create_on_a_hidden_item_is_404(user_client, catalog):
    r = user_client.post("/api/v1/me/history/", {"item_id": catalog["hidden"].pk, "kind": "like"})
    assert_error(r, 404)


def test_malformed_json_is_400_in_the_error_shape(user_client):
    r = user_client.generic(
        "POST", "/api/v1/me/history/", "{not json", content_type="application/json"
    )
    assert_error(r, 400)


def test_update_changes_a_rating(user_client, interaction):
    url = f"/api/v1/me/history/{interaction.pk}/"
    r = user_client.patch(url, {"value": 2})
    assert r.status_code == 200 and r.json()["value"] == 2.0
    interaction.refresh_from_db()
    assert interaction.value == 2.0
    assert_error(user_client.patch(url, {"value": 0}), 400)
    assert_error(user_client.patch(url, {"value": None}), 400)
    # PATCH sends only what changes (the schema's fields are all optional): {} changes nothing
    unchanged = user_client.patch(url, {})
    assert unchanged.status_code == 200 and unchanged.json()["value"] == 2.0


def test_update_of_a_like_has_no_value(user_client, user, catalog):
    like = Interaction.objects.create(user=user, item=catalog["space"], kind="like")
    body = assert_error(user_client.patch(f"/api/v1/me/history/{like.pk}/", {"value": 3}), 400)
    assert body["extra"] == {"field": "value"}


def test_delete(user_client, interaction):
    assert user_client.delete(f"/api/v1/me/history/{interaction.pk}/").status_code == 204
    assert not Interaction.objects.filter(pk=interaction.pk).exists()
    assert_error(user_client.delete(f"/api/v1/me/history/{interaction.pk}/"), 404)


# who -> expected status for (GET, PATCH, DELETE) on alice's interaction
MATRIX = {
    "anon": (401, 401, 401),
    "owner": (200, 200, 204),
    "other": (404, 404, 404),
    "staff": (404, 404, 404),  # staff have no back door into users' histories
}


@pytest.mark.parametrize("who", MATRIX)
def test_permission_matrix(clients, interaction, who):
    client = clients[who]
    url = f"/api/v1/me/history/{interaction.pk}/"
    get, patch, delete = MATRIX[who]
    responses = [client.get(url), client.patch(url, {"value": 1}), client.delete(url)]
    for response, expected in zip(responses, (get, patch, delete), strict=True):
        if expected >= 400:
            body = assert_error(response, expected)
            assert "alice" not in str(body) and str(interaction.item.title) not in str(body)
        else:
            assert response.status_code == expected
    interaction_exists = Interaction.objects.filter(pk=interaction.pk).exists()
    assert interaction_exists == (who != "owner")
    if who != "owner":
        interaction.refresh_from_db()
        assert interaction.value == 4.0


@pytest.mark.parametrize("who", ["other", "staff"])
def test_lists_never_show_another_users_history(clients, interaction, who):
    assert clients[who].get("/api/v1/me/history/").json()["results"] == []


def test_list_and_create_need_authentication(anon_client, catalog):
    assert_error(anon_client.get("/api/v1/me/history/"), 401)
    r = anon_client.post("/api/v1/me/history/", {"item_id": catalog["space"].pk, "kind": "like"})
    assert_error(r, 401)
