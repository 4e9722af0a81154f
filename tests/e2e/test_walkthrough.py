"""A person and a staff member use the site in headless Chromium, step by step.

The tests of this module are consecutive steps of one visit (they share the browser pages and
the database, see conftest.py) and run in file order: sign up -> pick favourites -> a personal
list with reasons; rate -> the list changes; dismiss -> gone for good; search and filter; the
item page; staff hides an item in the admin -> gone from every list; staff presses "train now"
-> the bar reaches 100% and a new version is active. Each step saves screenshots.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from catalog.selectors import catalog_search
from catalog.titles import display_title

from .conftest import staff_dashboard

# django_db (not transactional): makes pytest-django create the test database and keeps the test
# thread's own reads in a rolled-back transaction; the live server commits what the browser does.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db]

USERNAME = "e2e_walker"
PASSWORD = "tall-Purple-41-e2e"
TIMEOUT = 15_000


def _ids(page: Page) -> list[int]:
    return [
        int(i)
        for i in page.locator("#for-you .card").evaluate_all(
            "cards => cards.map(c => c.dataset.itemId)"
        )
    ]


@pytest.fixture(scope="module")
def page(browser, site):
    context = browser.new_context(base_url=site, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="module")
def staff_page(browser, site):
    page = staff_dashboard(browser, site, {"width": 1280, "height": 900})
    yield page
    page.context.close()


def test_sign_up_pick_favourites_and_get_a_personal_list_with_reasons(page: Page, shots):
    page.goto("/")
    expect(page.get_by_role("link", name="Chat")).to_have_attribute("href", "/chat/")
    page.screenshot(path=shots / "01-home-anonymous.png", full_page=True)
    page.get_by_role("link", name="Sign up").first.click()
    page.fill("#id_username", USERNAME)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.screenshot(path=shots / "02-signup.png", full_page=True)
    page.get_by_role("button", name="Sign up").click()

    expect(page).to_have_url(re.compile(r"/welcome/$"))
    expect(page.locator("h1")).to_have_text("Pick a few favourites")
    picks = page.locator(".pickable label")
    assert picks.count() >= 12
    genres = set(page.locator(".pickable .meta").all_inner_texts())
    assert len(genres) >= 6, "the selection is varied"
    for n in range(6):
        picks.nth(n).click()
    page.screenshot(path=shots / "03-onboarding.png", full_page=True)
    page.get_by_role("button", name="Show my list").click()

    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("h1")).to_have_text("For you")
    cards = page.locator("#for-you .card")
    expect(cards.first).to_be_visible()
    assert cards.count() >= 12
    reasons = page.locator("#for-you .reason").all_inner_texts()
    assert all(r.strip() for r in reasons), "every item says why"
    assert any(r.startswith("Because you liked") for r in reasons), reasons
    first = page.locator("#for-you .why").first
    first.locator("summary").click()
    expect(first.locator(".evidence")).to_be_visible()
    expect(first.locator(".evidence .ev").first).to_be_visible()
    page.screenshot(path=shots / "04-for-you.png", full_page=False)


def test_rating_an_item_changes_the_list_without_a_reload(page: Page, shots):
    page.evaluate("window.__sameDocument = true")
    before = _ids(page)
    target = before[1]
    card = page.locator(f'#for-you .card[data-item-id="{target}"]')
    card.locator("select.rate-select").select_option("5")
    # the rated item is now seen: the refreshed list no longer offers it
    expect(card).to_have_count(0)
    after = _ids(page)
    assert after != before and target not in after
    assert page.evaluate("window.__sameDocument") is True, "no page reload"


def test_dismissing_an_item_removes_it_for_good(page: Page, shots):
    target = _ids(page)[0]
    card = page.locator(f'#for-you .card[data-item-id="{target}"]')
    title = card.locator(".card-title").inner_text()
    card.get_by_role("button", name=re.compile("^Not interested in")).click()
    # the card stays, dimmed, with its undo, until the page is left
    expect(card.get_by_role("button", name=re.compile("^Undo"))).to_be_visible()
    page.reload()
    expect(page.locator("#for-you .card").first).to_be_visible()
    assert target not in _ids(page)

    page.get_by_role("link", name="History", exact=True).click()
    row = page.locator("table.history tr", has_text=title)
    expect(row).to_contain_text("Not interested")
    expect(page.locator("table.history tbody tr")).to_have_count(
        8
    )  # 6 likes, 1 rating, 1 dismissal
    page.screenshot(path=shots / "05-history.png", full_page=True)
    page.goto("/")
    assert target not in _ids(page)


def test_search_filter_sort_and_paginate(page: Page, shots):
    page.get_by_role("link", name="Catalog").click()
    expect(page.locator("h1")).to_have_text("Catalog")
    total = page.locator(".count strong").inner_text()
    page.fill("#id_q", "alien")
    expect(page).to_have_url(re.compile(r"q=alien"))
    expect(page.locator(".count")).to_contain_text("matching “alien”")
    titles = page.locator("#results .card-title").all_inner_texts()
    assert titles and titles[0].startswith("Alien"), titles
    assert page.locator(".count strong").inner_text() != total

    page.select_option("#id_genre", "Horror")
    expect(page).to_have_url(re.compile(r"genre=Horror"))
    horror = page.locator("#results .card-title").all_inner_texts()
    assert horror and set(horror) <= set(titles) | set(horror)
    page.select_option("#id_sort", "newest")
    expect(page).to_have_url(re.compile(r"sort=newest"))
    years = [
        int(m.group(1))
        for m in (re.match(r"(\d{4})", t) for t in page.locator("#results .meta").all_inner_texts())
        if m
    ]
    assert years == sorted(years, reverse=True)
    page.screenshot(path=shots / "06-catalog-search.png", full_page=True)

    page.goto("/items/?genre=Comedy&year_min=1990&year_max=1999&sort=title")
    expect(page.locator(".pager")).to_contain_text("Page 1 of")
    first_page = page.locator("#results .card-title").all_inner_texts()
    page.get_by_role("link", name="Next →").click()
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(page.locator(".pager")).to_contain_text("Page 2 of")
    second_page = page.locator("#results .card-title").all_inner_texts()
    assert not set(first_page) & set(second_page)
    # the second page holds the next titles in the database's own order (its collation, not
    # Python's, decides where "The ..." or punctuation sorts)
    in_order = list(
        catalog_search(genre="Comedy", year_min=1990, year_max=1999, sort="title").values_list(
            "title", flat=True
        )
    )
    in_order = [display_title(t) for t in in_order]  # cards show titles as a person reads them
    size = len(first_page)
    assert first_page == in_order[:size]
    assert second_page == in_order[size : 2 * size]


def test_item_page_shows_details_rating_similar_items_and_why(page: Page, shots):
    page.goto("/items/?q=Aliens")
    page.locator("#results .card-link").first.click()
    expect(page.locator("h1")).to_contain_text("Aliens")
    expect(page.get_by_role("heading", name="Your rating")).to_be_visible()
    expect(page.get_by_role("heading", name="Similar items")).to_be_visible()
    assert page.locator(".grid.small .card").count() >= 6
    expect(page.get_by_role("heading", name="Why this would be recommended to you")).to_be_visible()
    page.locator(".yours select.rate-select").select_option("4")
    expect(page.locator(".yours select.rate-select")).to_have_value("4")
    expect(page.locator(".yours .stars-show")).to_have_attribute("style", re.compile(r"--r: 4\b"))
    page.screenshot(path=shots / "07-item.png", full_page=True)


def test_staff_hides_an_item_and_it_leaves_every_list(page: Page, staff_page: Page, shots):
    from django.contrib.auth import get_user_model

    from recommender.selectors import recommendations_for_user

    page.goto("/")
    target = _ids(page)[0]
    others = [
        u
        for u in get_user_model().objects.filter(username__startswith="ml_").order_by("id")[:60]
        if target in {r.item.pk for r in recommendations_for_user(user=u, n=20)}
    ]
    assert others, "the item is in other users' lists too"

    staff_page.goto(f"/admin/catalog/item/{target}/change/")
    staff_page.check("#id_is_hidden")
    staff_page.click("input[name=_save]")
    expect(staff_page.locator(".messagelist")).to_contain_text("was changed successfully")

    page.reload()
    expect(page.locator("#for-you .card").first).to_be_visible()
    assert target not in _ids(page)
    for user in others:
        assert target not in {r.item.pk for r in recommendations_for_user(user=user, n=20)}
    assert page.goto(f"/items/{target}/").status == 404


@pytest.fixture
def evaluate_on_train():
    """Evaluate the run (recall@20, ndcg@10) so the dashboard's plot has a point for it."""
    from django.conf import settings

    before = getattr(settings, "RECOMMENDER_EVALUATE_ON_TRAIN", None)
    settings.RECOMMENDER_EVALUATE_ON_TRAIN = True
    yield
    settings.RECOMMENDER_EVALUATE_ON_TRAIN = before


def test_staff_trains_a_new_version_and_watches_the_progress_bar(
    staff_page: Page, shots, evaluate_on_train
):
    from recommender.selectors import version_active

    old = version_active()
    staff_page.goto("/staff/")
    expect(staff_page.locator("#versions")).to_contain_text(f"v{old.pk}")
    staff_page.screenshot(path=shots / "08-dashboard.png", full_page=True)
    staff_page.click("#train-now")
    box = staff_page.locator("#training .progress-box")
    # active, then its quality measured (the bar polls until then)
    expect(box.locator(".pct")).to_have_text("100%", timeout=300_000)
    expect(box).to_have_attribute("data-status", "active")
    expect(box.locator("[role=progressbar]")).to_have_attribute("aria-valuenow", "100")
    # the bar keeps polling while the new version's quality is measured, until "done"
    expect(box.locator(".progress-label")).to_contain_text("done", timeout=300_000)
    new = version_active()
    assert new.pk != old.pk and new.status == "active"
    expect(staff_page.locator("#versions")).to_contain_text(f"Active: v{new.pk}")
    assert "recall@20" in new.metrics
    expect(staff_page.locator("#versions svg circle").first).to_be_attached()
    staff_page.screenshot(path=shots / "09-dashboard-trained.png", full_page=True)


def test_small_screen_layout(browser, site, page: Page, shots):
    context = browser.new_context(
        base_url=site,
        viewport={"width": 390, "height": 844},
        storage_state=page.context.storage_state(),
    )
    mobile = context.new_page()
    mobile.goto("/")
    expect(mobile.locator("#for-you .card").first).to_be_visible()
    width = mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "no horizontal scrolling on a phone"
    mobile.screenshot(path=shots / "10-for-you-mobile.png", full_page=False)
    context.close()
