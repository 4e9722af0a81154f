"""Fixtures of the server-side page tests: a tiny catalog with distinctive titles (so the tests
also hold when the session's MovieLens data is in the database) and a few users."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from catalog.models import Interaction, Item


@dataclass
class Catalog:
    alien: Item
    aliens: Item
    heat: Item
    up: Item
    secret: Item  # hidden by staff


@pytest.fixture
def catalog(db, django_user_model) -> Catalog:
    fan = django_user_model.objects.create_user("qq_fan", password="x-Secret-123")
    alien = Item.objects.create(
        external_id="qq1",
        title="Qqalien Xenomorph",
        year=1979,
        genres=["Horror", "Sci-Fi"],
        tags=["space", "creature"],
        description="A crew in deep space meets a deadly stowaway.",
    )
    aliens = Item.objects.create(
        external_id="qq2",
        title="Qqaliens Return",
        year=1986,
        genres=["Action", "Sci-Fi"],
        tags=["space"],
    )
    heat = Item.objects.create(
        external_id="qq3", title="Qqheat Robbery", year=1995, genres=["Crime", "Thriller"]
    )
    up = Item.objects.create(
        external_id="qq4", title="Qqup Balloons", year=2009, genres=["Animation", "Children"]
    )
    secret = Item.objects.create(
        external_id="qq5", title="Qqsecret Hidden", year=2001, genres=["Sci-Fi"], is_hidden=True
    )
    for item in (alien, aliens, heat):
        Interaction.objects.create(user=fan, item=item, kind="rating", value=4.5, source="import")
    return Catalog(alien, aliens, heat, up, secret)


@pytest.fixture
def user(db, django_user_model):
    return django_user_model.objects.create_user("qq_alice", password="x-Secret-123")


@pytest.fixture
def user_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(client, django_user_model):
    staff = django_user_model.objects.create_user(
        "qq_staff", password="x-Secret-123", is_staff=True, is_superuser=True
    )
    client.force_login(staff)
    return client


HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(scope="module", autouse=True)
def _empty_database(django_db_setup, django_db_blocker):
    """The page tests start from an empty database, as they would alone: an earlier package's
    committed data (tests/embeddings keeps its small catalog and model for the session) would
    change what a list shows."""
    from recommender.models import ModelVersion
    from tests.conftest import flush_database

    with django_db_blocker.unblock():
        if Item.objects.exists() or ModelVersion.objects.exists():
            flush_database()


@pytest.fixture(autouse=True)
def _fresh_serving_state():
    """The active version and catalog fingerprint are memoised per process for a second: every
    test starts without another test's (rolled back) version."""
    from recommender.lists import serving_state_forget

    serving_state_forget()
    yield
    serving_state_forget()
