"""Shared fixtures. Tests run against the real embedded PostgreSQL + pgvector (never SQLite).

MovieLens and a trained model are *committed* (training reads them outside the test's
transaction), so they are loaded and trained once per test module that asks for them and the
database is flushed when that module ends: every other module starts from an empty database, as it would
alone. Within a module the fixtures *ensure* their state (a live-server test's flush, or a
model trained on other data, is repaired by reloading or retraining).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

REPO = Path(settings.BASE_DIR)
MOVIELENS_DIR = Path(
    os.environ.get("RECSITE_MOVIELENS_DIR", REPO.parent / "shared" / "data" / "ml-latest-small")
)
ML_ITEMS = 9742
ML_RATINGS = 100836


@pytest.fixture(autouse=True)
def _catalog_state_reread():
    """Each test starts from the catalog fingerprint in the database: a test's rolled-back
    edits leave the process's fingerprint (kept for a second, as in serving) pointing at rows
    that no longer exist, and what is kept per fingerprint (item rows, rankings) with it."""
    from recommender.serving import serving_state_forget

    serving_state_forget()
    yield


@pytest.fixture(scope="session", autouse=True)
def _test_model_files():
    """The weights files of the test database's versions (380 MB each for ml-latest-small) go
    with the session: versions trained inside a test's transaction are rolled back, their files
    are not. Only the test database's own folder is touched, never the development one."""
    name = settings.DATABASES["default"].get("TEST", {}).get("NAME") or ""
    folder = Path(settings.RECOMMENDER_MODEL_DIR) / name
    assert name.startswith("test_"), name
    shutil.rmtree(folder, ignore_errors=True)  # a crashed run's leftovers
    yield
    shutil.rmtree(folder, ignore_errors=True)


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
    from catalog.importing.movielens import movielens_import
    from catalog.models import Interaction, Item

    if (
        Item.objects.filter(external_id__in=["1", "193609"]).count() == 2
        and Interaction.objects.filter(source="import").count() >= ML_RATINGS
    ):
        return
    movielens_import(path=movielens_dir)


def ensure_trained_model():
    """An active version of the default model, trained on exactly what the database holds."""
    from django.db import connection

    from catalog.models import POSITIVE_KINDS
    from recommender import engine, services
    from recommender.models import ModelVersion

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(DISTINCT (user_id, item_id)) FROM catalog_interaction"
            " WHERE kind = ANY(%s)",
            [list(POSITIVE_KINDS)],
        )
        pairs = cursor.fetchone()[0]
    active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    if (
        active is not None
        and active.n_interactions == pairs
        and active.algorithm == engine.DEFAULT_MODEL
    ):
        return active
    version = services.training_start(trigger="test")
    services.model_train(version_id=version.pk)
    return ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE)


def flush_database() -> None:
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(scope="module")
def _movielens_module(django_db_setup, django_db_blocker, movielens_dir):
    """Committed ml-latest-small for one module; flushed when the module ends."""
    with django_db_blocker.unblock():
        ensure_movielens(movielens_dir)
    yield movielens_dir
    with django_db_blocker.unblock():
        flush_database()


@pytest.fixture
def movielens_db(_movielens_module, django_db_blocker, movielens_dir):
    """The test database loaded with ml-latest-small (committed, shared within the module)."""
    with django_db_blocker.unblock():
        ensure_movielens(movielens_dir)
    return movielens_dir


@pytest.fixture(scope="module")
def _trained_module(_movielens_module, django_db_blocker):
    """The default model trained on the module's ml-latest-small, committed (outside any test's
    transaction, so that the tests of a module share one training run; flushed with the data)."""
    with django_db_blocker.unblock():
        ensure_trained_model()


@pytest.fixture
def trained_model(_trained_module, movielens_db, django_db_blocker):
    """ml-latest-small plus an active version of the default model trained on it (the module's
    committed one, retrained inside the test only when the test's data differ from it)."""
    with django_db_blocker.unblock():
        return ensure_trained_model()
