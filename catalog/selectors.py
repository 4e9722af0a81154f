"""Reads from the catalog."""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import overload

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.core.cache import cache
from django.db.models import (
    Avg,
    BooleanField,
    Case,
    Count,
    F,
    FloatField,
    Max,
    Min,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.expressions import RawSQL

from .models import POSITIVE_KINDS, Interaction, Item, Preference
from .query_words import query_words


def item_list(*, include_hidden: bool = False) -> QuerySet[Item]:
    qs = Item.objects.all()
    return qs if include_hidden else qs.filter(is_hidden=False)


def item_genres(*, cached: bool = False) -> list[str]:
    """Every genre in the catalog, alphabetically (``cached``: for a minute, for pages)."""
    from django.db import connection

    if cached and (genres := cache.get("catalog:genres")) is not None:
        return genres
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT unnest(genres) AS g FROM catalog_item WHERE NOT is_hidden ORDER BY g"
        )
        genres = [row[0] for row in cursor.fetchall()]
    cache.set("catalog:genres", genres, 60)
    return genres


def item_interaction_counts(*, items: QuerySet[Item]) -> QuerySet[Item]:
    return items.annotate(interaction_count=Count("interactions"))


def user_history(*, user, kinds: list[str] | None = None) -> QuerySet[Interaction]:
    qs = Interaction.objects.filter(user=user).select_related("item")
    if kinds:
        qs = qs.filter(kind__in=kinds)
    return qs.order_by("-timestamp", "-id")


# --- pages ------------------------------------------------------------------------------------

SORTS = ("relevance", "popular", "newest", "oldest", "title")
# what a catalog card never shows: left out of the page's query
CARD_DEFERRED = ("search_vector", "title_trigrams", "description", "metadata", "links", "tags")


def catalog_search(  # noqa: C901
    *,
    query: str = "",
    genre: str = "",
    year_min: int | None = None,
    year_max: int | None = None,
    sort: str = "",
) -> QuerySet[Item] | ItemsInOrder:
    """The catalog page: full-text search (websearch syntax on the trigger-maintained
    ``search_vector``, ranked by ``SearchRank``), a title substring match so short or partial
    words ("ali" -> Alien) still find something, and title trigrams so a typo, a missing "The" or
    a dropped accent ("termnator", "godfather", "amelie") finds the title; year words in the
    query ("90s", "after 2000") become year bounds; genre and year filters; a sort.

    Without a query "relevance" means "popular". Hidden items never appear.
    """
    qs = Item.objects.filter(is_hidden=False).defer(*CARD_DEFERRED)
    words = query_words(query)
    query = words.text
    year_min = year_min if year_min is not None else words.year_min
    year_max = year_max if year_max is not None else words.year_max
    if genre:
        qs = qs.filter(genres__contains=[genre])
    if year_min is not None:
        qs = qs.filter(year__gte=year_min)
    if year_max is not None:
        qs = qs.filter(year__lte=year_max)
    if query:
        search = SearchQuery(query, search_type="websearch", config="english")
        title_hit = Q(title__icontains=query)
        # the substring match alone scans every title; the trigrams it implies let the GIN
        # index find its candidates, so the three arms become one bitmap OR of index scans
        inner = substring_prefilter(query)
        title_found = title_hit & Q(title_trigrams__contains=inner) if inner else title_hit
        found = Q(search_vector=search) | title_found
        # a query in search syntax (quotes, "-word", "or") means exactly what it says
        typos = (
            {}
            if WEBSEARCH_SYNTAX.search(query)
            else typo_matches(trigrams(query), unless_found=qs.filter(found), unless_title=query)
        )
        qs = qs.filter(found | Q(pk__in=list(typos)))
        qs = qs.annotate(
            rank=SearchRank(F("search_vector"), search)
            + Case(When(title_hit, then=Value(0.5)), default=Value(0.0), output_field=FloatField())
            + Case(
                When(title__iexact=query, then=Value(1.0)),
                default=Value(0.0),
                output_field=FloatField(),
            )
            + typo_bonus(typos)
            + popularity_prior()
        )
    sort = sort if sort in SORTS else ""
    if not sort:
        sort = "relevance" if query else "popular"
    if sort == "relevance" and not query:
        sort = "popular"
    if sort == "relevance":
        return qs.order_by("-rank", "title", "id")
    if sort == "popular":
        return ItemsInOrder(items_in_popularity_order(qs))
    if sort == "newest":
        return qs.order_by(F("year").desc(nulls_last=True), "title", "id")
    if sort == "oldest":
        return qs.order_by(F("year").asc(nulls_last=True), "title", "id")
    return qs.order_by("title", "id")


# --- typo-tolerant titles: trigrams as pg_trgm makes them (see migration 0005) -------------------

TYPO_MIN_SCORE = 0.45
TYPO_MAX_MATCHES = 50
# the typo layer runs only when the other layers find fewer titles than a page shows
TYPO_UNLESS_FOUND = 20
# titles scored at most per query: far more than a typo of a real title shares its rarer
# trigrams with, far fewer than a catalog of 200k "Item N" titles shares "  i", "ite", "tem"
TYPO_MAX_CANDIDATES = 2000
_FREQUENCIES: dict[str, tuple[float, dict[str, int]]] = {}
WEBSEARCH_SYNTAX = re.compile(r'"|(?:^|\s)-\w|\s+or\s+', re.I)
_ACCENTS = str.maketrans("áàâäãåāéèêëēíìîïóòôöõøōúùûüñçýÿæœ", "aaaaaaaeeeeeiiiiooooooouuuuncyyao")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_WORD = re.compile(r"[a-z0-9]+")


def trigrams(text: str) -> list[str]:
    """The distinct trigrams of ``text`` exactly as ``catalog_trigrams()`` makes them in SQL."""
    grams: set[str] = set()
    for word in _NON_WORD.split((text or "").lower().translate(_ACCENTS)):
        if word:
            padded = f"  {word} "
            grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return sorted(grams)


def substring_trigrams(text: str) -> list[str]:
    """Trigrams every title containing ``text`` (case-insensitively) has in ``title_trigrams``:
    those inside each word of ``text``, padded where ``text`` itself shows the word's edge (a
    word followed by a space ends a title word too, so "item 12" needs "em " and, its "12"
    starting a word, "  1" and " 12": the rare trigrams at a word's edge keep the candidates
    few when every title shares the inner ones). Only for ASCII text, whose lower case and word
    breaks are the same in Python and in the database's ``catalog_trigrams()``; otherwise none
    (no prefilter: the substring match is checked on every title)."""
    if not text.isascii():
        return []
    text = text.lower()
    grams: set[str] = set()
    for match in _WORD.finditer(text):
        start, end = match.span()
        word = ("  " if start > 0 else "") + match.group() + (" " if end < len(text) else "")
        grams.update(word[i : i + 3] for i in range(len(word) - 2))
    return sorted(grams)


# trigrams a title-substring match hands the GIN index: each is a necessary condition, and the
# rarest few keep its posting lists short ("ite", "tem" and "em " of "item 48213" are in every
# title of an "Item N" catalog: intersecting them cost 2 ms of the search at 200k items)
SUBSTRING_PREFILTER_TRIGRAMS = 3


def substring_prefilter(text: str) -> list[str]:
    """The rarest ``SUBSTRING_PREFILTER_TRIGRAMS`` of ``substring_trigrams(text)`` (by the
    catalog's counts, ``trigram_frequencies``), sorted; the LIKE match decides the rest."""
    grams = substring_trigrams(text)
    if len(grams) <= SUBSTRING_PREFILTER_TRIGRAMS:
        return grams
    frequencies = trigram_frequencies()
    rarest = sorted(grams, key=lambda g: (frequencies.get(g, 0), g))
    return sorted(rarest[:SUBSTRING_PREFILTER_TRIGRAMS])


def typo_matches(
    grams: list[str],
    *,
    unless_found: QuerySet[Item] | None = None,
    unless_title: str | None = None,
    limit: int = TYPO_MAX_MATCHES,
    max_candidates: int = TYPO_MAX_CANDIDATES,
) -> dict[int, float]:
    """Titles close to the query's trigrams, {id: score}, best first. One query on the GIN
    index, apart from the catalog's main one: checked row by row beside the full-text match,
    the trigram overlap would cost more than the rest of the search.

    Bounded whatever the catalog's size: nothing when ``unless_found`` (the other layers' hits)
    already fills a page (the check is a LIMITed read of those hits inside the same statement,
    so a common word such as "the" or "Item 12" on a catalog of "Item N" titles scores no
    title), nothing either when one of those hits is titled ``unless_title`` exactly (the
    query names a title: it is no typo, and "Item 4821" need not score the thousands of "Item
    48..." titles), and at most ``max_candidates`` titles scored: those sharing the query's
    rarer trigrams, found through the index."""
    if not grams:
        return {}
    rows = Item.objects.filter(typo_candidates(grams, limit=max_candidates), is_hidden=False)
    if unless_found is not None:
        sql, params = (
            unless_found.order_by()
            .values("id", "title")[:TYPO_UNLESS_FOUND]
            .query.sql_with_params()
        )
        # an uncorrelated subquery: run once, and when false the candidates are never read
        rows = rows.filter(
            RawSQL(
                f"(SELECT count(*) < %s AND NOT coalesce(bool_or(lower(found.title) = lower(%s)),"
                f" FALSE) FROM ({sql}) AS found)",
                (TYPO_UNLESS_FOUND, unless_title or "", *params),
                output_field=BooleanField(),
            )
        )
    rows = (
        rows.annotate(typo=trigram_score(grams))
        .filter(typo__gte=TYPO_MIN_SCORE)
        .order_by("-typo", "id")
        .values_list("id", "typo")[:limit]
    )
    return dict(rows)


def trigram_frequencies() -> dict[str, int]:
    """In how many titles each trigram occurs (cached a few minutes; a new item changes the
    key, as for the popularity ranking). Kept in this process for a minute without looking
    for new items: the counts only order the typo layer's lookups, and a stale count changes
    which titles are read first, never which titles can be found below the limit."""
    from django.db import connection

    here = connection.settings_dict["NAME"]
    # kept in this process too: the cache would unpickle tens of thousands of entries per search
    if (memo := _FREQUENCIES.get(here)) is not None and memo[0] > time.monotonic():
        return memo[1]
    newest = Item.objects.aggregate(m=Max("id"))["m"] or 0
    key = f"catalog:trigram-df:{newest}"
    frequencies = cache.get(key)
    if frequencies is None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT g, count(*) FROM catalog_item, unnest(title_trigrams) AS g GROUP BY g"
            )
            frequencies = dict(cursor.fetchall())
        cache.set(key, frequencies, POPULARITY_CACHE_SECONDS)
    _FREQUENCIES.clear()
    _FREQUENCIES[here] = (time.monotonic() + TRIGRAM_MEMO_SECONDS, frequencies)
    return frequencies


def trigram_frequencies_forget() -> None:
    """Drop this process's trigram counts (tests that build a catalog, bulk imports)."""
    _FREQUENCIES.clear()


def typo_candidates(grams: list[str], *, limit: int = TYPO_MAX_CANDIDATES) -> RawSQL:
    """A filter on the titles to score: those that can reach ``TYPO_MIN_SCORE``, rarest first, at
    most ``limit``. A title's score is at most the share of the query's trigrams
    it has, so it has at least ``need`` of them and one of the rarest ``n - need + 1``: the
    titles having any of those are all the titles that can score. When the counts say they
    are more than the limit, read as index lookups in order (titles with two of the rarest four
    first, then with each of the rarest ones alone), each under the limit, and the statement
    stops reading at the limit: the common trigrams ("  s", "the", on a catalog of "Item N"
    titles "ite") are in thousands of titles, and are reached only if the rarer ones leave
    room."""
    n = len(grams)
    need = max(1, math.ceil(TYPO_MIN_SCORE * n - 1e-9))
    frequencies = trigram_frequencies()
    rarest = sorted(grams, key=lambda g: (frequencies.get(g, 0), g))[: n - need + 1]
    if sum(frequencies.get(g, 0) for g in rarest) <= limit:
        # few enough titles: one lookup, cheaper to plan than the tiers
        return RawSQL(
            '"catalog_item"."id" IN (SELECT id FROM catalog_item WHERE NOT is_hidden'
            " AND title_trigrams && %s::varchar(3)[] LIMIT %s)",
            (rarest, limit),
            BooleanField(),
        )
    tiers = [list(pair) for pair in itertools.combinations(rarest[:4], 2)]
    tiers += [[g] for g in rarest]
    lookup = (
        "(SELECT id FROM catalog_item WHERE NOT is_hidden"
        " AND title_trigrams @> %s::varchar(3)[] LIMIT %s)"
    )
    params: list = []
    for tier in tiers:
        params += [tier, limit]
    return RawSQL(
        f'"catalog_item"."id" IN (SELECT id FROM ({" UNION ALL ".join([lookup] * len(tiers))})'
        " AS tiers LIMIT %s)",
        (*params, limit),
        output_field=BooleanField(),
    )


def typo_bonus(typos: dict[int, float]) -> RawSQL | Value:
    """Each typo match's score, 0 for other rows: one array lookup per row (a CASE with a WHEN
    per match costs more to compile in Python than the query takes to run)."""
    if not typos:
        return Value(0.0, output_field=FloatField())
    return RawSQL(
        'COALESCE((%s::float8[])[array_position(%s::bigint[], "catalog_item"."id")], 0.0)',
        (list(typos.values()), list(typos)),
        output_field=FloatField(),
    )


def trigram_score(grams: list[str]) -> RawSQL:
    """How well a title matches the query's trigrams, 0..1: mostly how much of the query the
    title covers (a word similarity, so "termnator" finds "Terminator, The"), partly the overall
    similarity (so the shorter of two covering titles wins)."""
    n = max(len(grams), 1)
    return RawSQL(
        "(SELECT COALESCE(0.6 * count(*)::float / %s"
        " + 0.4 * count(*)::float / NULLIF(%s + cardinality(catalog_item.title_trigrams)"
        " - count(*), 0), 0)"
        " FROM unnest(catalog_item.title_trigrams) AS g WHERE g = ANY(%s::text[]))",
        (n, n, grams),
        output_field=FloatField(),
    )


POPULARITY_CACHE_SECONDS = 300
POPULARITY_MAX_KEY = "catalog:popularity-max"
TRIGRAM_MEMO_SECONDS = 60


def item_popularity_ranking() -> list[int]:
    """Every item id, most rated or liked first (ties by title). Counting 100k interactions
    takes tens of milliseconds, so the ranking is cached for a few minutes; a new item changes
    the cache key, so it is never missing from the ranking."""
    newest = Item.objects.aggregate(m=Max("id"))["m"] or 0
    key = f"catalog:popularity:{newest}"
    ranking = cache.get(key)
    if ranking is None:
        ranking, _top = _popularity_count(key)
    return ranking


def _popularity_count(key: str) -> tuple[list[int], int]:
    """One count of every item's positive interactions: caches the ranking under ``key`` and
    the top count beside it (the search's popularity prior scales by it)."""
    rows = list(
        Item.objects.annotate(
            n=Count("interactions", filter=Q(interactions__kind__in=POSITIVE_KINDS))
        )
        .order_by("-n", "title", "id")
        .values_list("id", "n")
    )
    ranking = [item_id for item_id, _n in rows]
    top = rows[0][1] if rows else 0
    cache.set(key, ranking, POPULARITY_CACHE_SECONDS)
    cache.set(POPULARITY_MAX_KEY, top, POPULARITY_CACHE_SECONDS)
    return ranking, top


#: the most a title's popularity adds to its search rank: less than the exact-title bonus (1.0)
#: and the substring bonus (.5), more than full-text ranks differ by among titles that all
#: contain the words, so "star wars" lists the films people watch before a holiday special
POPULARITY_PRIOR = 0.3


def item_popularity_max() -> int:
    """The most positive interactions any item has, counted with the popularity ranking."""
    top = cache.get(POPULARITY_MAX_KEY)
    if top is None:
        newest = Item.objects.aggregate(m=Max("id"))["m"] or 0
        _ranking, top = _popularity_count(f"catalog:popularity:{newest}")
    return top


def popularity_prior() -> RawSQL | Value:
    """Per row, ``POPULARITY_PRIOR`` x log(1 + the item's positive interactions), scaled by the
    most popular item's: counted for the rows that matched only (an index lookup each)."""
    top = item_popularity_max()
    if top <= 0:
        return Value(0.0, output_field=FloatField())
    return RawSQL(
        "%s * ln(1 + (SELECT count(*) FROM catalog_interaction pi"
        " WHERE pi.item_id = catalog_item.id AND pi.kind = ANY(%s)))",
        (POPULARITY_PRIOR / math.log(1 + top), [str(kind) for kind in POSITIVE_KINDS]),
        output_field=FloatField(),
    )


def items_in_popularity_order(qs: QuerySet[Item]) -> list[int]:
    """The ids of ``qs``, most rated or liked first: the site's one live popularity order."""
    allowed = set(qs.values_list("id", flat=True))
    ordered = [i for i in item_popularity_ranking() if i in allowed]
    if len(ordered) < len(allowed):  # created since the ranking was cached
        ordered += sorted(allowed.difference(ordered))
    return ordered


class ItemsInOrder(Sequence[Item]):
    """Items in a precomputed id order, loaded a page at a time (works with Paginator)."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def count(self) -> int:  # type: ignore[override]
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> Item: ...
    @overload
    def __getitem__(self, index: slice) -> list[Item]: ...
    def __getitem__(self, index: int | slice) -> Item | list[Item]:
        if isinstance(index, int):
            return Item.objects.get(pk=self.ids[index])
        ids = self.ids[index]
        items = Item.objects.defer(*CARD_DEFERRED).in_bulk(ids)
        return [items[i] for i in ids if i in items]


def item_year_bounds() -> tuple[int | None, int | None]:
    bounds = Item.objects.filter(is_hidden=False).aggregate(lo=Min("year"), hi=Max("year"))
    return bounds["lo"], bounds["hi"]


@dataclass
class ItemState:
    """What one user has said about one item (rating, like, dismissal, watch-list), and what
    everyone has: the average rating and the number of ratings."""

    rating: float | None = None
    rating_id: int | None = None
    like_id: int | None = None
    dismiss_id: int | None = None
    save_id: int | None = None
    average: float | None = None
    ratings: int = 0

    @property
    def liked(self) -> bool:
        return self.like_id is not None

    @property
    def dismissed(self) -> bool:
        return self.dismiss_id is not None

    @property
    def saved(self) -> bool:
        return self.save_id is not None

    @property
    def enjoyed(self) -> bool:
        """The user liked it or rated it well: an item page says so instead of "why"."""
        return self.liked or (self.rating is not None and self.rating >= 3.0)


STATE_KINDS = ("rating", "like", "dismiss", "save")


def item_rating_stats(*, item_ids: Iterable[int]) -> dict[int, tuple[float, int]]:
    """Per item id with ratings: (average rating, number of ratings)."""
    ids = list(item_ids)
    if not ids:
        return {}
    rows = (
        Interaction.objects.filter(item_id__in=ids, kind=Interaction.Kind.RATING)
        .values("item_id")
        .annotate(avg=Avg("value"), n=Count("id"))
        .order_by()
    )
    return {row["item_id"]: (float(row["avg"]), row["n"]) for row in rows}


def user_item_states(*, user, item_ids: Iterable[int]) -> dict[int, ItemState]:
    """Per item id, the user's rating / like / dismissal / save and the item's average rating
    (every id gets an entry)."""
    ids = list(item_ids)
    states: dict[int, ItemState] = {i: ItemState() for i in ids}
    for item_id, (average, n) in item_rating_stats(item_ids=ids).items():
        states[item_id].average, states[item_id].ratings = average, n
    if not ids or user is None or not user.is_authenticated:
        return states
    rows = Interaction.objects.filter(user=user, item_id__in=ids, kind__in=STATE_KINDS).values_list(
        "id", "item_id", "kind", "value"
    )
    for pk, item_id, kind, value in rows:
        state = states[item_id]
        if kind == Interaction.Kind.RATING:
            state.rating, state.rating_id = value, pk
        elif kind == Interaction.Kind.LIKE:
            state.like_id = pk
        elif kind == Interaction.Kind.SAVE:
            state.save_id = pk
        else:
            state.dismiss_id = pk
    return states


def user_interaction(*, user, item_id: int, kind: str) -> Interaction | None:
    return Interaction.objects.filter(user=user, item_id=item_id, kind=kind).first()


def user_has_history(*, user) -> bool:
    return Interaction.objects.filter(user=user).exclude(kind=Interaction.Kind.VIEW).exists()


def user_history_page(*, user, kind: str = "") -> QuerySet[Interaction]:
    """The history page: ratings, likes, saves and dismissals (views are not shown), newest
    first."""
    kinds = [kind] if kind in STATE_KINDS else list(STATE_KINDS)
    return (
        user_history(user=user, kinds=kinds)
        .filter(item__is_hidden=False)
        .defer("item__search_vector", "item__description", "item__metadata", "item__links")
    )


def user_history_counts(*, user) -> dict[str, int]:
    rows = (
        Interaction.objects.filter(user=user, item__is_hidden=False)
        .values("kind")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["kind"]: row["n"] for row in rows}


@dataclass
class CurationState:
    counts: dict[str, int]
    pinned: list[Item]
    featured: list[Item]
    boosted: list[Item]
    hidden: list[Item]


def curation_state(*, limit: int = 12) -> CurationState:
    """The staff dashboard's view of curation: counts and the first items of each kind."""
    base = Item.objects.only(
        "id", "title", "year", "boost", "is_hidden", "is_featured", "is_pinned"
    )
    counts = Item.objects.aggregate(
        items=Count("id"),
        hidden=Count("id", filter=Q(is_hidden=True)),
        featured=Count("id", filter=Q(is_featured=True)),
        pinned=Count("id", filter=Q(is_pinned=True)),
        boosted=Count("id", filter=~Q(boost=0)),
    )
    return CurationState(
        counts=counts,
        pinned=list(base.filter(is_pinned=True).order_by("title")[:limit]),
        featured=list(base.filter(is_featured=True).order_by("title")[:limit]),
        boosted=list(base.exclude(boost=0).order_by("-boost", "title")[:limit]),
        hidden=list(base.filter(is_hidden=True).order_by("-updated_at")[:limit]),
    )


def catalog_fingerprint() -> str:
    """Changes whenever an item is added, edited (curation included) or deleted: a cache key.
    Two index lookups (the primary key's and ``item_updated_idx``) and the deletions' counter
    (migration 0007), whatever the catalog's size."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT max(id) FROM catalog_item), (SELECT max(updated_at) FROM catalog_item),"
            " (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM catalog_item_deletions)"
        )
        top, changed, deletions = cursor.fetchone()
    return f"{top or 0}.{changed.timestamp() if changed else 0}.{deletions}"


# --- standing preferences --------------------------------------------------------------------------


def preference_list(*, user, kind: str = "") -> QuerySet[Preference]:  # noqa: ANN001
    """The user's standing preferences (of one ``kind`` if given), by kind and value."""
    qs = Preference.objects.filter(user=user)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("kind", "value")


def preference_exclusions(*, user) -> tuple[str, ...]:  # noqa: ANN001
    """The genres the user said "no more" of, sorted (none for an anonymous user)."""
    if not getattr(user, "is_authenticated", False):
        return ()
    return tuple(
        preference_list(user=user, kind=Preference.Kind.EXCLUDE_GENRE).values_list(
            "value", flat=True
        )
    )
