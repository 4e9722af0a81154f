"""Shared fixtures. Tests run against the real embedded PostgreSQL + pgvector (never SQLite).

Data fixtures *ensure* their state instead of assuming it: tests that use ``transactional_db``
or ``live_server`` flush every table when they end, so the next test that needs MovieLens or a
trained model reloads it (import ~10 s, training a few seconds) instead of failing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings

REPO = Path(settings.BASE_DIR)
MOVIELENS_DIR = Path(
    os.environ.get("RECSITE_MOVIELENS_DIR", REPO.parent / "shared" / "data" / "ml-latest-small")
)
ML_ITEMS = 9742
ML_RATINGS = 100836


@pytest.fixture(scope="session")
def movielens_dir() -> Path:
    if not (MOVIELENS_DIR / "ratings.csv").exists():
        pytest.fail(
            f"ml-latest-small not found at {MOVIELENS_DIR}; set RECSITE_MOVIELENS_DIR",
            pytrace=False,
        )
    return MOVIELENS_DIR


def ensure_movielens(movielens_dir: Path) -> None:
    """Load ml-latest-small into the test database unless it is there (committed)."""
    from catalog.importers import movielens_import
    from catalog.models import Interaction, Item

    if (
        Item.objects.filter(external_id__in=["1", "193609"]).count() == 2
        and Interaction.objects.filter(source="import").count() >= ML_RATINGS
    ):
        return
    movielens_import(path=movielens_dir)


def ensure_trained_model():
    """An active model version of the default model, trained on what the database holds."""
    from recommender import services
    from recommender.models import ModelVersion

    active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    if active is not None:
        return active
    version = services.training_start(trigger="test")
    services.model_train(version_id=version.pk)
    return ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE)


@pytest.fixture
def movielens_db(django_db_setup, django_db_blocker, movielens_dir):
    """The test database loaded with ml-latest-small (committed, shared by tests)."""
    with django_db_blocker.unblock():
        ensure_movielens(movielens_dir)
    return movielens_dir


@pytest.fixture
def trained_model(movielens_db, django_db_blocker):
    """ml-latest-small plus an active version of the default model (committed, shared)."""
    with django_db_blocker.unblock():
        return ensure_trained_model()
