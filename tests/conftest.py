"""Shared fixtures. Tests run against the real embedded PostgreSQL + pgvector (never SQLite)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings

REPO = Path(settings.BASE_DIR)
MOVIELENS_DIR = Path(
    os.environ.get("RECSITE_MOVIELENS_DIR", REPO.parent / "shared" / "data" / "ml-latest-small")
)


@pytest.fixture(scope="session")
def movielens_dir() -> Path:
    if not (MOVIELENS_DIR / "ratings.csv").exists():
        pytest.fail(
            f"ml-latest-small not found at {MOVIELENS_DIR}; set RECSITE_MOVIELENS_DIR",
            pytrace=False,
        )
    return MOVIELENS_DIR


@pytest.fixture(scope="session")
def movielens_db(django_db_setup, django_db_blocker, movielens_dir):
    """The test database loaded with ml-latest-small, once per session (committed, shared)."""
    from catalog.importers import movielens_import

    with django_db_blocker.unblock():
        movielens_import(path=movielens_dir)
    return movielens_dir
