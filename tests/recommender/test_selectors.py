"""Serving: recommendations with evidence, exclusions, curation, filters, similar items; the reads
behind a list (the filters' two forms agree, ``__any`` is ``__in``, the list's evidence shares
match the item page's, a fixed number of queries)."""

from __future__ import annotations

import dataclasses

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Interaction, Item
from catalog.services import interaction_record, items_curate
from recommender import evidence, selectors
from recommender.types import EVIDENCE_KINDS, SOURCES, Filters
from tests.conftest import ML_ITEMS

pytestmark = pytest.mark.django_db

USERS = ["ml_1", "ml_68", "ml_414", "ml_600"]


@pytest.fixture
def users(trained_model, django_user_model):
    return [django_user_model.objects.get(username=u) for u in USERS]


def _ids(recs) -> list[int]:
    return [r.item.pk for r in recs]


def test_recommendations_exclude_seen_and_carry_grounded_evidence(users):
    for user in users:
        recs = selectors.recommendations_for_user(user=user, n=20)
        assert len(recs) == 20
        assert [r.rank for r in recs] == list(range(1, 21))
        history = selectors.user_history_ids(user_id=user.pk)
        assert not set(_ids(recs)) & history.seen  # nothing already seen
        for rec in recs:
            assert rec.source in SOURCES
            assert rec.reason
            for ev in rec.evidence:
                assert ev.kind in EVIDENCE_KINDS
            # every history item cited is in this user's own liked history
            assert rec.history_item_ids <= set(history.liked), (user, rec.item, rec.evidence)
        cf = [r for r in recs if r.source == "cf"]
        assert len(cf) >= 15
        assert all(r.history_item_ids for r in cf[:10])  # CF items say which history items


def test_a_new_rating_changes_the_list_at_once(users):
    user = users[1]
    before = selectors.recommendations_for_user(user=user, n=10)
    top = before[0].item
    neighbour = selectors.similar_items(item=top, n=1, user=user)[0].item
    score_before = selectors.recommendation_for_item(user=user, item=neighbour).score
    interaction_record(user=user, item=top, kind="rating", value=5.0)
    after = selectors.recommendations_for_user(user=user, n=10)
    assert top.pk not in _ids(after)
    assert _ids(after) != _ids(before)
    # the freshly rated item now pulls up its nearest neighbour's score
    assert selectors.recommendation_for_item(user=user, item=neighbour).score > score_before


def test_dismissed_items_are_gone_and_stay_gone(users):
    user = users[0]
    target = selectors.recommendations_for_user(user=user, n=5)[2].item
    interaction_record(user=user, item=target, kind="dismiss")
    for n in (5, 20, 100):
        assert target.pk not in _ids(selectors.recommendations_for_user(user=user, n=n))


def test_hidden_items_never_appear(users, django_capture_on_commit_callbacks):
    tops = {selectors.recommendations_for_user(user=u, n=3)[0].item.pk for u in users}
    # as after a commit: the curating process forgets its catalog fingerprint at once (another
    # process re-reads it within API_SERVING_STATE_SECONDS)
    with django_capture_on_commit_callbacks(execute=True):
        items_curate(items=list(tops), is_hidden=True)
    for user in users:
        recs = selectors.recommendations_for_user(user=user, n=100)
        assert not tops & set(_ids(recs))
        assert all(not r.item.is_hidden for r in recs)
    for pk in tops:
        sims = selectors.similar_items(item=Item.objects.get(external_id="1"), n=50)
        assert pk not in _ids(sims)
    assert not tops & set(_ids(selectors.popular_items(n=100)))


def test_pinned_first_featured_and_boosted_move_up(users, django_capture_on_commit_callbacks):
    user = users[2]
    recs = selectors.recommendations_for_user(user=user, n=30)
    low = recs[-1].item
    pin = (
        Item.objects.exclude(pk__in=_ids(recs))
        .exclude(pk__in=selectors.user_history_ids(user_id=user.pk).excluded)
        .filter(year__gte=2000)
        .first()
    )
    with django_capture_on_commit_callbacks(execute=True):  # as committed: the state moves
        items_curate(items=[pin.pk], is_pinned=True)
        items_curate(items=[low.pk], boost=5.0)
    after = selectors.recommendations_for_user(user=user, n=30)
    assert after[0].item == pin and after[0].source == "curated"
    assert any(e.kind == "curated" for e in after[0].evidence)
    assert _ids(after).index(low.pk) < 5
    assert "Boosted" in " ".join(e.label for e in after[_ids(after).index(low.pk)].evidence)


def test_hard_filters(users):
    user = users[0]
    recs = selectors.recommendations_for_user(
        user=user, n=15, filters=Filters(genres=("Comedy",), year_min=1990, year_max=1999)
    )
    assert len(recs) == 15
    for rec in recs:
        assert "Comedy" in rec.item.genres and 1990 <= rec.item.year <= 1999
    no_horror = selectors.recommendations_for_user(
        user=user, n=30, filters=Filters(exclude_genres=("Horror",))
    )
    assert all("Horror" not in r.item.genres for r in no_horror)
    excluded = frozenset(_ids(no_horror[:5]))
    rest = selectors.recommendations_for_user(
        user=user, n=30, filters=Filters(exclude_genres=("Horror",), exclude_ids=excluded)
    )
    assert not excluded & set(_ids(rest))


def test_similar_items_of_alien_are_sci_fi_or_horror(trained_model):
    alien = Item.objects.get(title="Alien", year=1979)
    sims = selectors.similar_items(item=alien, n=10)
    assert len(sims) == 10 and alien.pk not in _ids(sims)
    titles = [r.item.title for r in sims]
    assert "Aliens" in titles
    assert (
        sum(1 for r in sims if {"Sci-Fi", "Horror", "Thriller", "Action"} & set(r.item.genres)) >= 8
    )
    for rec in [r for r in sims if r.source == "cf"][:5]:
        # nobody's history: the evidence is what other users did, never "because you liked"
        assert not rec.history_item_ids
        assert rec.evidence[0].kind == "similar_users" and rec.evidence[0].item_id == alien.pk
        assert "Because you liked" not in rec.reason


def test_similar_items_cite_the_item_as_history_only_if_the_user_liked_it(users):
    fan = users[0]  # ml_1 rated Alien 4+
    alien = Item.objects.get(title="Alien", year=1979)
    assert alien.pk in selectors.user_history_ids(user_id=fan.pk).liked
    for rec in selectors.similar_items(item=alien, n=5, user=fan):
        if rec.source == "cf":
            assert rec.history_item_ids == {alien.pk}
            assert rec.reason.startswith("Because you liked Alien")


def test_cold_start_user_gets_popular_items_then_personal_ones(trained_model, django_user_model):
    user = django_user_model.objects.create_user("fresh", password="x-Secret-123")
    recs = selectors.recommendations_for_user(user=user, n=10)
    assert len(recs) == 10 and all(r.source == "popular" for r in recs)
    picks = selectors.onboarding_items(n=24)
    assert len(picks) == 24 and len({p.genres[0] for p in picks if p.genres}) >= 5
    alien = Item.objects.get(title="Alien", year=1979)
    aliens = Item.objects.get(title="Aliens", year=1986)
    for item in (alien, aliens):
        interaction_record(user=user, item=item, kind="like")
    personal = selectors.recommendations_for_user(user=user, n=10)
    assert personal[0].source == "cf"
    assert personal[0].reason.startswith("Because you liked")
    assert personal[0].history_item_ids <= {alien.pk, aliens.pk}


def test_explanation_for_an_item_page(users):
    user = users[0]
    top = selectors.recommendations_for_user(user=user, n=1)[0]
    rec = selectors.recommendation_for_item(user=user, item=top.item)
    assert rec.history_item_ids and rec.history_item_ids <= set(
        selectors.user_history_ids(user_id=user.pk).liked
    )
    assert rec.score > 0


def test_low_ratings_do_not_pull_similar_items(trained_model, django_user_model):
    user = django_user_model.objects.create_user("picky", password="x-Secret-123")
    alien = Item.objects.get(title="Alien", year=1979)
    interaction_record(user=user, item=alien, kind="rating", value=1.0)
    history = selectors.user_history_ids(user_id=user.pk)
    assert alien.pk in history.seen and alien.pk not in history.liked
    assert Interaction.objects.filter(user=user).count() == 1


# --- the reads behind a list ---------------------------------------------------------------------

FILTER_CASES = [
    Filters(),
    Filters(genres=("Comedy",)),
    Filters(genres=("Comedy", "Horror"), year_min=1990),
    Filters(exclude_genres=("Drama",), year_max=1985),
    Filters(year_min=2000, year_max=2005, exclude_genres=("Animation", "Children")),
    Filters(exclude_ids=frozenset(range(400))),  # offsets from the first item's id
    Filters(include_ids=frozenset(range(200, 900)), genres=("Action",)),
    Filters(include_ids=frozenset()),
    Filters(genres=("No such genre",)),
]


@pytest.mark.parametrize("filters", FILTER_CASES, ids=repr)
def test_filters_sql_and_q_select_the_same_items(trained_model, filters):
    hidden = set(Item.objects.order_by("pk").values_list("pk", flat=True)[::3000])
    Item.objects.filter(pk__in=hidden).update(is_hidden=True)
    first = Item.objects.order_by("pk").values_list("pk", flat=True)[0]  # ids move per module
    filters = dataclasses.replace(
        filters,
        exclude_ids=frozenset(first + i for i in filters.exclude_ids),
        include_ids=None
        if filters.include_ids is None
        else frozenset(first + i for i in filters.include_ids),
    )
    orm = set(selectors.items_filtered(filters=filters).values_list("id", flat=True))
    where, params = filters.sql("i")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT i.id FROM catalog_item i WHERE NOT i.is_hidden{where}", params)
        sql = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT id, genres, year FROM catalog_item WHERE NOT is_hidden")
        python = {i for i, g, y in cursor.fetchall() if filters.admits(pk=i, genres=g, year=y)}
    assert orm == sql == python
    assert not orm & hidden
    if filters == Filters():
        assert len(orm) == Item.objects.count() - len(hidden) == ML_ITEMS - 4
    if filters.exclude_ids:
        visible = Item.objects.filter(is_hidden=False).exclude(pk__in=filters.exclude_ids)
        assert not orm & filters.exclude_ids and len(orm) == visible.count() > ML_ITEMS - 410
    if filters.include_ids:
        assert orm and orm <= filters.include_ids


def test_any_lookup_is_in_with_one_parameter(trained_model):
    ids = list(Item.objects.order_by("pk").values_list("pk", flat=True)[:300:7])
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
    facts, curated = evidence.item_facts(
        ids=[alien.pk, toy.pk], filters=Filters(genres=("Animation",)), curated=10
    )
    assert facts[toy.pk].passes and not facts[alien.pk].passes  # hidden
    assert facts[toy.pk].title == "Toy Story" and "Animation" in facts[toy.pk].genres
    assert [f.pk for f in curated] == [toy.pk]  # Heat is pinned but not Animation
    _facts, curated = evidence.item_facts(ids=[], filters=Filters(), curated=10)
    assert [f.pk for f in curated] == [heat.pk, toy.pk]  # pinned first


def _shifted(filters: Filters) -> Filters:
    """``filters`` with its ids counted from the catalog's first id (ids move per module)."""
    first = Item.objects.order_by("pk").values_list("pk", flat=True)[0]
    return dataclasses.replace(
        filters,
        exclude_ids=frozenset(first + i for i in filters.exclude_ids),
        include_ids=None
        if filters.include_ids is None
        else frozenset(first + i for i in filters.include_ids),
    )


@pytest.mark.parametrize("filters", FILTER_CASES, ids=repr)
def test_item_facts_kept_per_catalog_state_are_the_facts_read(
    trained_model, filters, django_capture_on_commit_callbacks
):
    """The facts a process keeps per catalog fingerprint, with each request's filters applied in
    Python, are the facts one query reads with the filters in SQL: the same items, the same
    ``passes``, the same rows and the same curated items; an item hidden since moves the
    fingerprint, and the next read sees it."""
    from recommender.serving import serving_state

    pks = list(Item.objects.order_by("pk").values_list("pk", flat=True))
    ids, rows = pks[:400:3], pks[:200:3]
    filters = _shifted(filters)
    with django_capture_on_commit_callbacks(execute=True):  # each forgets the fingerprint
        items_curate(items=pks[10:14], is_pinned=True)
        items_curate(items=[pks[3], pks[500]], boost=1.5)
        items_curate(items=[pks[6], pks[700]], is_featured=True)
        items_curate(items=[pks[9]], is_hidden=True)
    state = serving_state()[1]

    def both() -> tuple:
        read = evidence.item_facts(ids=ids, filters=filters, curated=8, rows=rows)
        kept = evidence.item_facts(
            ids=ids, filters=filters, curated=8, rows=rows, catalog_state=state
        )
        return read, kept

    for _ in range(2):  # the first call reads and keeps, the second answers from what it kept
        (facts, curated), (kept_facts, kept_curated) = both()
        assert kept_facts == facts
        assert [f.pk for f in kept_curated] == [f.pk for f in curated]
        assert kept_curated == curated
    assert set(ids) <= set(facts)
    assert not facts[pks[9]].passes
    with django_capture_on_commit_callbacks(execute=True):
        items_curate(items=[pks[0]], is_hidden=True)
    assert serving_state()[1] != state
    state = serving_state()[1]
    (facts, curated), (kept_facts, kept_curated) = both()
    assert not kept_facts[pks[0]].passes and kept_facts == facts and kept_curated == curated


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
    """The version and the history: the candidates' facts and rows, the curated items and the
    favourites' profile were read by the first list and are kept for the catalog fingerprint."""
    for username in ("ml_1", "ml_414"):  # 232 and 2,698 ratings
        user = django_user_model.objects.get(username=username)
        selectors.recommendations_for_user(user=user, n=20)  # per-process caches
        with CaptureQueriesContext(connection) as queries:
            recs = selectors.recommendations_for_user(user=user, n=20)
        assert len(recs) == 20
        assert len(queries) == 2, [q["sql"][:80] for q in queries]
        assert not [q for q in queries if "catalog_item" in q["sql"]]


RARE_FILTERS = [
    Filters(genres=("Film-Noir",)),
    Filters(genres=("IMAX",), year_max=2005),
    Filters(genres=("Documentary",), year_max=1995),
    Filters(genres=("(no genres listed)",)),
]


def test_a_rare_filter_ranks_every_cf_match_above_the_popularity_fill(users):
    """Under a filter few items pass, the weakest CF match that passes still comes before the
    popular items that only fill the list: a model's score, however small, says more about this
    user than popularity does."""
    mixed = 0
    for user in users:
        for filters in RARE_FILTERS:
            recs = selectors.recommendations_for_user(user=user, n=20, filters=filters)
            sources = [r.source for r in recs]
            assert set(sources) <= {"cf", "semantic", "popular"}, sources
            if "popular" in sources:
                first_fill = sources.index("popular")
                assert "cf" not in sources[first_fill:], (user.username, filters, sources)
                mixed += "cf" in sources
            # the scores a client sees follow the order
            scores = [r.score for r in recs]
            assert scores == sorted(scores, reverse=True), (user.username, filters, scores)
    assert mixed >= 2, "no list mixed CF matches with the popularity fill: the test proves nothing"


# five science-fiction favourites, the walkthrough's new user: Jurassic Park, The Matrix, Star
# Wars, Terminator 2, Men in Black (all five also action films)
SCI_FI_FAVOURITES = ["480", "2571", "260", "589", "1580"]


def _sci_fi_in_top_10(user) -> int:
    recs = selectors.recommendations_for_user(user=user, n=10)
    assert len(recs) == 10
    return sum("Sci-Fi" in r.item.genres for r in recs)


def test_a_short_history_gets_a_list_closer_to_its_genres(
    trained_model, django_user_model, settings
):
    """A new user with five sci-fi favourites: the genre-coherence term keeps more of the top 10
    in science fiction than the model's scores alone; a long history's list is left as it is."""
    user = django_user_model.objects.create_user(username="sci_fi_fan", password="x")
    for external_id in SCI_FI_FAVOURITES:
        item = Item.objects.get(external_id=external_id)
        assert "Sci-Fi" in item.genres
        interaction_record(user=user, item=item, kind="rating", value=5.0)
    settings.RECOMMENDER_SHORT_HISTORY = 10
    settings.RECOMMENDER_GENRE_COHERENCE = 0.0
    without = _sci_fi_in_top_10(user)
    settings.RECOMMENDER_GENRE_COHERENCE = 0.2
    with_term = _sci_fi_in_top_10(user)
    assert with_term > without, (with_term, without)

    # a history longer than RECOMMENDER_SHORT_HISTORY is ranked by the model alone
    veteran = django_user_model.objects.get(username="ml_1")
    strong = [r.item.pk for r in selectors.recommendations_for_user(user=veteran, n=10)]
    settings.RECOMMENDER_GENRE_COHERENCE = 0.0
    assert [r.item.pk for r in selectors.recommendations_for_user(user=veteran, n=10)] == strong
