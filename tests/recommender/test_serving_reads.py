"""The reads behind a "For you" list: the filters' two forms agree, ``__any`` is ``__in``, the
list's evidence shares match the item page's, and the list costs a fixed number of queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Item
from catalog.services import items_curate
from recommender import selectors
from recommender.types import Filters

pytestmark = pytest.mark.django_db

FILTER_CASES = [
    Filters(),
    Filters(genres=("Comedy",)),
    Filters(genres=("Comedy", "Horror"), year_min=1990),
    Filters(exclude_genres=("Drama",), year_max=1985),
    Filters(year_min=2000, year_max=2005, exclude_genres=("Animation", "Children")),
    Filters(exclude_ids=frozenset(range(1, 400))),
    Filters(include_ids=frozenset(range(200, 900)), genres=("Action",)),
    Filters(include_ids=frozenset()),
    Filters(genres=("No such genre",)),
]


@pytest.mark.parametrize("filters", FILTER_CASES, ids=repr)
def test_filters_sql_and_q_select_the_same_items(trained_model, filters):
    Item.objects.filter(pk__in=[5, 50, 500]).update(is_hidden=True)
    orm = set(selectors.items_filtered(filters=filters).values_list("id", flat=True))
    where, params = filters.sql("i")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT i.id FROM catalog_item i WHERE NOT i.is_hidden{where}", params)
        sql = {row[0] for row in cursor.fetchall()}
    assert orm == sql
    assert not orm & {5, 50, 500}
    if filters == Filters():
        assert len(orm) == Item.objects.count() - 3


def test_any_lookup_is_in_with_one_parameter(trained_model):
    ids = list(range(1, 300, 7))
    assert list(Item.objects.filter(pk__any=ids).order_by("pk").values_list("pk", flat=True)) == (
        list(Item.objects.filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
    )
    assert not Item.objects.filter(pk__any=[]).exists()
    assert Item.objects.exclude(pk__any=ids).count() == Item.objects.count() - len(ids)
    sql, params = Item.objects.filter(pk__any=ids).query.sql_with_params()
    assert "= ANY(%s)" in sql and list(params) == [ids]


def test_item_facts_say_what_passes_and_list_curated_items(trained_model):
    alien = Item.objects.get(title="Alien", year=1979)
    toy = Item.objects.get(external_id="1")
    heat = Item.objects.get(external_id="6")
    items_curate(items=[heat.pk], is_pinned=True)
    items_curate(items=[toy.pk], boost=2.0)
    items_curate(items=[alien.pk], is_hidden=True)
    facts, curated = selectors._item_facts(
        ids=[alien.pk, toy.pk], filters=Filters(genres=("Animation",)), curated=10
    )
    assert facts[toy.pk].passes and not facts[alien.pk].passes  # hidden
    assert facts[toy.pk].title == "Toy Story" and "Animation" in facts[toy.pk].genres
    assert [f.pk for f in curated] == [toy.pk]  # Heat is pinned but not Animation
    _facts, curated = selectors._item_facts(ids=[], filters=Filters(), curated=10)
    assert [f.pk for f in curated] == [heat.pk, toy.pk]  # pinned first


def test_list_evidence_shares_match_the_item_pages(trained_model, django_user_model):
    """The list's per-candidate contributions (computed for the whole pool at once) name the
    same history items with the same shares as the item page's explanation of one item."""
    user = django_user_model.objects.get(username="ml_414")
    recs = [r for r in selectors.recommendations_for_user(user=user, n=20) if r.source == "cf"]
    assert len(recs) >= 15
    for rec in recs:
        page = selectors.recommendation_for_item(user=user, item=rec.item)
        listed = [(e.item_id, e.weight) for e in rec.evidence if e.kind == "history_item"]
        shown = [(e.item_id, e.weight) for e in page.evidence if e.kind == "history_item"]
        assert listed and [i for i, _ in listed] == [i for i, _ in shown], rec.item
        assert [w for _, w in listed] == pytest.approx([w for _, w in shown], abs=2e-4)
        assert 0 < sum(w for _, w in listed) <= 1.0 + 1e-6


def test_a_list_costs_a_fixed_number_of_queries(trained_model, django_user_model):
    """version, history, the facts (candidates, curated, favourites), the returned rows."""
    for username in ("ml_1", "ml_414"):  # 232 and 2,698 ratings
        user = django_user_model.objects.get(username=username)
        selectors.recommendations_for_user(user=user, n=20)  # per-process caches
        with CaptureQueriesContext(connection) as queries:
            recs = selectors.recommendations_for_user(user=user, n=20)
        assert len(recs) == 20
        assert len(queries) == 4, [q["sql"][:80] for q in queries]
