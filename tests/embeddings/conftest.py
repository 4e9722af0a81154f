"""Fixtures: a small real catalog (tests/embeddings/catalog_data.py), embedded with the real
local model, a few themed users and a trained model version, committed once per session."""

from __future__ import annotations

import random

import pytest

from .catalog_data import MOVIES

THEMES = ("space", "horror", "animation", "romance", "war", "crime", "scifi")
USERS_PER_THEME = 6


def ensure_small_catalog() -> None:
    from django.contrib.auth import get_user_model

    from catalog.models import Interaction, Item
    from recommender import services as rec_services
    from recommender.embeddings.services import embeddings_refresh
    from recommender.models import ModelVersion

    if not Item.objects.filter(external_id=MOVIES[-1][0]).exists():
        Item.objects.bulk_create(
            [
                Item(external_id=mid, title=title, year=year, genres=genres, description=desc)
                for mid, title, year, genres, desc, _theme in MOVIES
            ]
        )
    User = get_user_model()
    if not User.objects.filter(username__startswith="fan_").exists():
        ids = dict(Item.objects.values_list("external_id", "id"))
        rng = random.Random(7)
        rows = []
        for theme in THEMES:
            pool = [ids[m[0]] for m in MOVIES if m[5] == theme]
            for k in range(USERS_PER_THEME):
                user = User.objects.create(username=f"fan_{theme}_{k}")
                liked = rng.sample(pool, min(len(pool), 4))
                liked.append(rng.choice(list(ids.values())))
                rows += [
                    Interaction(user=user, item_id=i, kind=Interaction.Kind.LIKE)
                    for i in dict.fromkeys(liked)
                ]
        Interaction.objects.bulk_create(rows)
    embeddings_refresh()
    if not ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exists():
        version = rec_services.training_start(trigger="test")
        rec_services.model_train(version_id=version.pk)


@pytest.fixture(scope="session")
def small_catalog(django_db_setup, django_db_blocker):
    """The small catalog, its embeddings and an active model (committed, shared by tests)."""
    with django_db_blocker.unblock():
        ensure_small_catalog()


@pytest.fixture
def item_ids(small_catalog) -> dict[str, int]:
    from catalog.models import Item

    return dict(Item.objects.values_list("external_id", "id"))
