"""Test settings: the same kind of database as production (PostgreSQL + pgvector), never SQLite."""

from .base import *  # noqa: F403
from .base import DATABASES, env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Parallel test runs on one machine (several checkouts, or a developer beside CI) each get their
# own test database.
DATABASES["default"]["TEST"] = {"NAME": f"test_recsite_{env('RECSITE_TEST_DB', 'main')}"}
DATABASES["default"]["CONN_MAX_AGE"] = 0
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
RECOMMENDER_EVALUATE_ON_TRAIN = env("RECOMMENDER_EVALUATE_ON_TRAIN", "false") == "true"
# Other apps' tests never load the embedding model as a side effect of an import or an admin
# edit; tests/embeddings switches it on where it is the subject.
EMBEDDINGS_AUTO_REFRESH = env("EMBEDDINGS_AUTO_REFRESH", "false") == "true"
# a fixed model for the suite's shared trained version (per-site selection has its own tests)
RECOMMENDER_MODEL = env("RECOMMENDER_MODEL", "session_ease")
