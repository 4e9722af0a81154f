"""End-to-end fixtures: ml-latest-small, a trained model, a live server and Debian's Chromium.

pytest-django's ``live_server`` implies ``transactional_db``, which flushes every table after
each test and would wipe MovieLens between the steps of a walk. So this package runs its own
live server (Django's ``LiveServerThread``) for the whole module, on the test database with the
data committed once; the tests of a module are consecutive steps of one visit and share one
browser. At the end of the module the database is flushed, as a live-server test would, and the
shared data fixtures (``ensure_*`` in tests/conftest.py) reload it for whoever needs it next.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import ensure_movielens, ensure_trained_model

# Playwright's sync API runs an event loop in the test thread; Django's ORM would refuse to run
# beside it without this (there is no concurrency: the calls are sequential).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from scripts.screenshots import CHROMIUM, CHROMIUM_ARGS  # noqa: E402,F401  (one definition)

SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
STAFF = ("e2e_staff", "e2e-Staff-pass-1")


@pytest.fixture(scope="module")
def site(django_db_setup, django_db_blocker, movielens_dir) -> Iterator[str]:
    """A live server on the test database holding ml-latest-small and an active model."""
    from django.contrib.auth import get_user_model
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test.testcases import LiveServerThread

    if not connection.settings_dict["NAME"].startswith("test_"):
        pytest.fail("no test database: mark the browser tests with django_db", pytrace=False)
    with django_db_blocker.unblock():
        # an earlier package's committed data (other users' histories, extra items) would change
        # what onboarding offers and what the model learns: start from ml-latest-small alone
        from catalog.models import Interaction, Item
        from tests.conftest import ML_ITEMS, flush_database

        if (
            Item.objects.count() != ML_ITEMS
            or Interaction.objects.exclude(source="import").exists()
        ):
            flush_database()
        ensure_movielens(movielens_dir)
        ensure_trained_model()
        User = get_user_model()
        if not User.objects.filter(username=STAFF[0]).exists():
            User.objects.create_superuser(STAFF[0], "staff@example.com", STAFF[1])
        server = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
        server.daemon = True
        server.start()
        server.is_ready.wait()
        if server.error:
            raise server.error
        try:
            yield f"http://127.0.0.1:{server.port}"
        finally:
            from recommender.runner import background_wait

            background_wait(timeout=300)  # a run started from a page ends before the flush
            server.terminate()
            call_command("flush", interactive=False, verbosity=0)
            connections.close_all()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (Debian's chromium)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def staff_dashboard(browser, site: str, viewport: dict):  # noqa: ANN001, ANN201
    """A new browser context logged in as staff, on /staff/ (close its ``context`` after)."""
    from playwright.sync_api import expect

    context = browser.new_context(base_url=site, viewport=viewport)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/admin/login/?next=/staff/")
    page.fill("#id_username", STAFF[0])
    page.fill("#id_password", STAFF[1])
    page.click("input[type=submit]")
    expect(page.locator("h1")).to_have_text("Staff dashboard")
    return page
