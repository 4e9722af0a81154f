from __future__ import annotations

import pytest

from catalog.models import Interaction
from recommender.types import EVIDENCE_KINDS, SOURCES

from .conftest import assert_error

URL = "/api/v1/me/recommendations/"


def assert_contract(rec: dict) -> None:
    """The explanation contract: item, rank, score, source, evidence {kind, item_id?, label, weight}."""
    assert set(rec) == {"item", "rank", "score", "source", "reason", "evidence"}
    assert rec["source"] in SOURCES
    for ev in rec["evidence"]:
        assert ev["kind"] in EVIDENCE_KINDS
        assert isinstance(ev["label"], str) and isinstance(ev["weight"], float | int)
        assert ("item_id" in ev) == (ev["kind"] == "history_item")


@pytest.mark.django_db
def test_popular_fallback_respects_hard_filters_and_history(user_client, user, catalog):
    Interaction.objects.create(user=user, item=catalog["space"], kind="like")
    Interaction.objects.create(user=user, item=catalog["horror"], kind="dismiss")
    r = user_client.get(
        URL, {"n": 5, "genre": ["Zsci", "Zhorror"], "exclude_item": catalog["aliens"].pk}
    )
    assert r.status_code == 200, r.content
    body = r.json()
    ids = [rec["item"]["id"] for rec in body["results"]]
    assert ids == [catalog["alien"].pk]  # liked, dismissed, hidden and excluded items are gone
    assert [rec["rank"] for rec in body["results"]] == [1]
    for rec in body["results"]:
        assert_contract(rec)
    assert "private" in r["Cache-Control"] and r.has_header("ETag")


@pytest.mark.django_db
def test_year_and_exclude_genre_filters(user_client, catalog):
    r = user_client.get(
        URL, {"n": 100, "year_min": 1970, "year_max": 1990, "exclude_genre": "Zhorror"}
    )
    years = [rec["item"]["year"] for rec in r.json()["results"]]
    assert years and all(1970 <= y <= 1990 for y in years)
    assert catalog["alien"].pk not in [rec["item"]["id"] for rec in r.json()["results"]]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {"n": 0},
        {"n": 101},
        {"n": "ten"},
        {"year_min": 2000, "year_max": 1999},
        {"exclude_item": "x"},
    ],
)
def test_bad_parameters(user_client, catalog, params):
    assert "fields" in assert_error(user_client.get(URL, params), 400)["extra"]


@pytest.mark.django_db
def test_needs_authentication(anon_client):
    assert_error(anon_client.get(URL), 401)


@pytest.mark.slow
@pytest.mark.django_db
def test_real_model_recommendations_carry_checked_evidence(trained_model, user_client, user):
    """ml-latest-small + the default model: a sci-fi fan's list cites their own history."""
    from catalog.models import Item

    liked = list(
        Item.objects.filter(title__in=["Alien", "Aliens", "Terminator, The", "Matrix, The"])
    )
    assert len(liked) == 4
    for item in liked:
        Interaction.objects.create(user=user, item=item, kind="like")
    r = user_client.get(URL, {"n": 100})
    body = r.json()
    assert body["model_version"] == trained_model.pk
    assert body["count"] == 100 == len(body["results"])
    liked_ids = {i.pk for i in liked}
    assert not liked_ids & {rec["item"]["id"] for rec in body["results"]}
    cf = [rec for rec in body["results"] if rec["source"] == "cf"]
    assert cf, "a trained model serves collaborative-filtering recommendations"
    for rec in body["results"]:
        assert_contract(rec)
    cited = {ev["item_id"] for rec in cf for ev in rec["evidence"] if ev["kind"] == "history_item"}
    assert cited and cited <= liked_ids
    # similar items from the same model
    alien = next(i for i in liked if i.title == "Alien")
    sim = user_client.get(f"/api/v1/items/{alien.pk}/similar/", {"n": 10}).json()
    assert sim["count"] == 10
    assert not liked_ids & {rec["item"]["id"] for rec in sim["results"]}


@pytest.mark.django_db
def test_cached_list_follows_history_and_curation(
    user_client, staff_client, catalog, django_capture_on_commit_callbacks
):
    def ids() -> list[int]:
        r = user_client.get(URL, {"n": 100, "genre": ["Zsci", "Zcomedy"]})
        return [rec["item"]["id"] for rec in r.json()["results"]]

    first = ids()
    assert catalog["space"].pk in first and ids() == first  # second read: from the cache
    user_client.post("/api/v1/me/history/", {"item_id": catalog["space"].pk, "kind": "dismiss"})
    assert catalog["space"].pk not in ids()  # my history changed
    # curation sends items_curated after commit, which also clears the process's serving state
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.patch(f"/api/v1/staff/items/{catalog['comedy'].pk}/", {"is_hidden": True})
    assert catalog["comedy"].pk not in ids()  # the catalog changed
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.patch(f"/api/v1/staff/items/{catalog['romcom'].pk}/", {"is_pinned": True})
    assert ids()[0] == catalog["romcom"].pk  # curation shows at once


@pytest.mark.django_db
def test_a_no_more_genre_said_in_chat_applies_to_my_recommendations(user_client, user, catalog):
    from catalog.models import Preference

    def ids(params):
        r = user_client.get(URL, {"n": 10, "genre": "Zsci", **params})
        assert r.status_code == 200, r.content
        return [rec["item"]["id"] for rec in r.json()["results"]]

    assert catalog["alien"].pk in ids({})  # Zsci + Zhorror
    preference = Preference.objects.create(user=user, kind="exclude_genre", value="Zhorror")
    after = ids({})
    assert catalog["alien"].pk not in after
    assert catalog["space"].pk in after  # the rest of the list stays
    # asked for explicitly, the genre is not left out
    assert catalog["horror"].pk in ids({"genre": "Zhorror"})
    preference.delete()
    assert catalog["alien"].pk in ids({})  # the cached list was not reused
