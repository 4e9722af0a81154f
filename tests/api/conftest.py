"""Fixtures of the API tests: clients for each actor and a small hand-made catalog.

Run with ``RECSITE_TEST_DB=api`` so the test database does not collide with other checkouts.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from catalog.models import Interaction, Item, Preference
from chat.models import Conversation

User = get_user_model()


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """Throttle counters and cached lists live in the cache, the active version, the catalog
    fingerprint and the serving memos in this process: every test starts with none."""
    from recommender.lists import serving_state_forget
    from recsite import memo

    cache.clear()
    memo.clear_all()
    serving_state_forget()
    yield
    cache.clear()
    memo.clear_all()
    serving_state_forget()


def _client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def user(db):
    return User.objects.create_user("alice", password="correct horse battery")


@pytest.fixture
def other_user(db):
    return User.objects.create_user("bob", password="correct horse battery")


@pytest.fixture
def staff(db):
    return User.objects.create_user("carol", password="correct horse battery", is_staff=True)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user_client(user) -> APIClient:
    return _client_for(user)


@pytest.fixture
def other_client(other_user) -> APIClient:
    return _client_for(other_user)


@pytest.fixture
def staff_client(staff) -> APIClient:
    return _client_for(staff)


@pytest.fixture
def clients(anon_client, user_client, other_client, staff_client) -> dict[str, APIClient]:
    return {"anon": anon_client, "owner": user_client, "other": other_client, "staff": staff_client}


def make_item(title: str, year: int | None, genres: list[str], **kw) -> Item:
    ext = kw.pop("external_id", f"t-{title.lower().replace(' ', '-')}")
    return Item.objects.create(external_id=ext, title=title, year=year, genres=genres, **kw)


@pytest.fixture
def catalog(db) -> dict[str, Item]:
    """Eight items in made-up genres (unique names, so loaded MovieLens data never interferes)."""
    items = {
        "space": make_item("Zorblax Space Odyssey", 1968, ["Zsci", "Zdrama"], tags=["space"]),
        "alien": make_item(
            "Zorblax Alien Hunt", 1979, ["Zsci", "Zhorror"], tags=["space", "alien"]
        ),
        "aliens": make_item("Zorblax Aliens Return", 1986, ["Zsci", "Zaction"]),
        "comedy": make_item("Zorblax Laugh Riot", 1999, ["Zcomedy"]),
        "romcom": make_item("Zorblax Love Laughs", 2005, ["Zcomedy", "Zromance"]),
        "horror": make_item("Zorblax Night Terror", 2010, ["Zhorror"]),
        "undated": make_item("Zorblax Lost Reel", None, ["Zdrama"]),
        "hidden": make_item("Zorblax Secret Cut", 2001, ["Zsci"], is_hidden=True),
    }
    # some popularity: a few other users like the sci-fi items
    for n in range(3):
        fan = User.objects.create_user(f"fan{n}")
        for key in ("space", "alien", "aliens")[: 3 - n]:
            Interaction.objects.create(user=fan, item=items[key], kind="like")
    return items


@pytest.fixture
def interaction(user, catalog) -> Interaction:
    return Interaction.objects.create(user=user, item=catalog["alien"], kind="rating", value=4.0)


def assert_error(response, status: int) -> dict:
    """Every failure has the one error shape, and the status expected."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"message", "extra"}, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["extra"], dict)
    return body


@pytest.fixture
def fuzz_env(transactional_db, live_server, settings):
    """A live server with a small catalog, a staff user's token and some of their objects."""
    conf = dict(settings.REST_FRAMEWORK)
    conf["DEFAULT_THROTTLE_RATES"] = {k: "100000/min" for k in conf["DEFAULT_THROTTLE_RATES"]}
    settings.REST_FRAMEWORK = conf

    staff = User.objects.create_user("fuzzer", password="x", is_staff=True)
    items = [
        make_item("Fuzz Alien", 1979, ["Sci-Fi", "Horror"]),
        make_item("Fuzz Comedy", 1999, ["Comedy"]),
        make_item("Fuzz Drama", None, ["Drama"]),
        make_item("Fuzz Hidden", 2000, ["Drama"], is_hidden=True),
    ]
    # small ids exist, so random ids sometimes hit real objects (1..n)
    Interaction.objects.create(user=staff, item=items[0], kind="rating", value=4.0)
    Interaction.objects.create(user=staff, item=items[1], kind="like")
    Conversation.objects.create(user=staff, title="fuzz")
    Preference.objects.create(user=staff, kind="exclude_genre", value="Horror")
    token = Token.objects.create(user=staff)
    yield {
        "url": live_server.url,
        "token": token.key,
        "headers": {"Authorization": f"Token {token.key}"},
    }
    from recommender.runner import background_wait

    background_wait(timeout=300)  # a training run the fuzzer started ends before the flush
