"""The catalog page: PostgreSQL full-text search, filters, sorting, pagination, htmx partial."""

from __future__ import annotations

from django.urls import reverse

from catalog import selectors
from catalog.models import Item

from .conftest import HTMX


def _titles(**params) -> list[str]:
    return [i.title for i in selectors.catalog_search(**params) if i.title.startswith("Qq")]


def test_full_text_search_on_title_tags_and_description(catalog):
    assert _titles(query="Xenomorph")[0] == "Qqalien Xenomorph"
    assert set(_titles(query="space")) == {"Qqalien Xenomorph", "Qqaliens Return"}  # tags
    assert _titles(query="stowaway") == ["Qqalien Xenomorph"]  # description, stemmed
    assert "Qqsecret Hidden" not in _titles(query="Qqsecret")


def test_short_and_partial_words_match_titles(catalog):
    assert set(_titles(query="qqalie")) == {"Qqalien Xenomorph", "Qqaliens Return"}


def test_websearch_syntax(catalog):
    assert _titles(query='space -"Return"') == ["Qqalien Xenomorph"]


def test_title_hits_rank_first(catalog):
    Item.objects.create(
        external_id="qq9", title="Qqother", description="Robbery in Qqheat town", genres=["Drama"]
    )
    assert _titles(query="Qqheat Robbery")[0] == "Qqheat Robbery"


def test_filters_and_sorts(catalog):
    assert _titles(query="qq", genre="Sci-Fi", sort="oldest") == [
        "Qqalien Xenomorph",
        "Qqaliens Return",
    ]
    assert _titles(query="qq", year_min=1990, year_max=2000) == ["Qqheat Robbery"]
    assert _titles(query="qq", sort="newest")[0] == "Qqup Balloons"
    assert _titles(query="qq", sort="title")[:2] == ["Qqalien Xenomorph", "Qqaliens Return"]
    popular = _titles(query="qq", sort="popular")
    assert popular.index("Qqup Balloons") == len(popular) - 1  # nobody rated it


def test_page_renders_results_and_keeps_filters_in_pagination(client, catalog):
    for n in range(30):
        Item.objects.create(external_id=f"qqp{n}", title=f"Qqpage {n:02d}", genres=["Drama"])
    response = client.get(reverse("item-list"), {"q": "qqpage", "sort": "title"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "<strong>30</strong> items" in page and "Qqpage 00" in page and "Qqpage 29" not in page
    assert 'href="?q=qqpage&amp;sort=title&amp;page=2"' in page
    page2 = client.get(reverse("item-list"), {"q": "qqpage", "sort": "title", "page": 2})
    assert "Qqpage 29" in page2.content.decode()


def test_htmx_request_gets_only_the_results_partial(client, catalog):
    response = client.get(reverse("item-list"), {"q": "qqheat"}, **HTMX)
    page = response.content.decode()
    assert page.lstrip().startswith('<section id="results"') and "<html" not in page
    assert "Qqheat Robbery" in page


def test_invalid_filters_are_named_and_the_valid_ones_still_apply(client, catalog):
    response = client.get(reverse("item-list"), {"year_min": "abc", "sort": "bogus", "page": "x"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'role="alert"' in page and "From year: Enter a whole number." in page
    assert "Sort by: Select a valid choice." in page and "without those filters" in page
    # the search text is valid, so it still narrows the list beside a bad year
    response = client.get(reverse("item-list"), {"q": "qqheat", "year_max": "95"}, **HTMX)
    page = response.content.decode()
    assert "To year: Ensure this value is greater than or equal to 1800." in page
    assert "without that filter" in page
    assert "Qqheat Robbery" in page and "Qqalien Xenomorph" not in page
    clean = client.get(reverse("item-list"), {"q": "qqheat"}).content.decode()
    assert 'role="alert"' not in clean


def test_genre_and_year_controls_have_labels(client, catalog):
    page = client.get(reverse("item-list")).content.decode()
    for field in ("id_q", "id_genre", "id_year_min", "id_year_max", "id_sort"):
        assert f'<label for="{field}">' in page
    assert '<option value="Sci-Fi">' in page
