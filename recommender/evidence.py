"""What a recommendation is made from: the items' facts, the history items that contributed,
the genres and tags shared with the user's favourites, curation; turned into
:class:`Evidence` and a reason sentence (``reasons.reason_for``)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from django.db import connection

from catalog.models import Item
from catalog.titles import display_label
from recsite.memo import Memo
from recsite.model_rows import ModelRows

from .history import History
from .reasons import reason_for
from .types import Evidence, Filters, Recommendation

MAX_EVIDENCE_ITEMS = 3
PROFILE_ITEMS = 200  # the most recent favourites that make up the genre/tag profile

Contribution = tuple[int, float]  # (history item, its part); (-1, rest): all the others


@dataclass(slots=True, frozen=True)
class ItemFacts:
    """What ranking and evidence read of an item: one light row (no text, no JSON). The full
    rows are read only for the items a list returns. Frozen: a process keeps them for every
    request (``item_facts``)."""

    pk: int
    title: str
    year: int | None
    genres: list[str]
    tags: list[str]
    is_pinned: bool
    is_featured: bool
    boost: float
    passes: bool  # visible and inside the request's hard filters
    # the rest of the item's row (_ROW_COLUMNS), when it was read with the facts: the item may
    # end up in a list, which then needs no query of its own for it (``item_row``)
    rest: tuple | None = None

    def __str__(self) -> str:
        return display_label(self.title, self.year)


_FACT_NAMES = ("id", "title", "year", "genres", "tags", "is_pinned", "is_featured", "boost")
_FACT_COLUMNS = ", ".join(f"i.{c}" for c in _FACT_NAMES)
# A full row is the facts plus these. The search columns (a tsvector, the title's trigrams) and
# the timestamps, which nothing showing a recommendation reads, stay deferred: the timestamps'
# parsing alone costs a fifth of the statement's time.
_ROW_DEFERRED = ("search_vector", "title_trigrams", "created_at", "updated_at")
_ROWS = ModelRows(Item, exclude=_ROW_DEFERRED)
_REST_FIELDS = [f for f in _ROWS.fields if f.attname not in _FACT_NAMES]
_REST_NAMES = [f.attname for f in _REST_FIELDS]
_ROW_COLUMNS = ", ".join(f"i.{f.column}" for f in _REST_FIELDS)
_ROW_NULLS = ", ".join("NULL" for _ in _REST_FIELDS)


# where each of the instance's columns (the model's order) stands in the facts and the rest
_ROW_ORDER = [[*_FACT_NAMES, *_REST_NAMES].index(name) for name in _ROWS.names]


def item_row(fact: ItemFacts) -> Item | None:
    """The item's model instance from the row read with its facts (None: not read)."""
    if fact.rest is None:
        return None
    read = (
        fact.pk,
        fact.title,
        fact.year,
        fact.genres,
        fact.tags,
        fact.is_pinned,
        fact.is_featured,
        fact.boost,
        *fact.rest,
    )
    return _ROWS.instance([read[i] for i in _ROW_ORDER])


# Each process keeps the catalog rows lists read, per catalog fingerprint (any item added,
# edited or deleted moves it): the same few thousand items are the candidates of most lists,
# and reading their rows and building their facts was a fifth of an uncached list. A kept row
# is the item's, whatever the request's filters: ``passes`` says only that it is visible, and
# each request applies its filters in Python (``Filters.admits``). About 1 kB an item.
FACTS_KEPT = 10_000
_KEPT = Memo(size=FACTS_KEPT, seconds=600)
# the visible curated items (pinned, featured or boosted), all of them, per fingerprint; a
# catalog with more than this many is read with the filters in SQL on every list
CURATED_KEPT = 2_000
_CURATED = Memo(size=4, seconds=600)


def item_facts(
    *,
    ids: Iterable[int],
    filters: Filters,
    curated: int = 0,
    rows: Iterable[int] = (),
    catalog_state: str | None = None,
) -> tuple[dict[int, ItemFacts], list[ItemFacts]]:
    """The facts of ``ids`` (each says whether it passes ``filters``), with the rest of the rows
    of those of them in ``rows`` (the candidates a list may return: ``item_row``), and, with
    ``curated`` > 0, up to that many curated items passing them (pinned first, then by id) plus
    the curated ones among ``ids``.

    With ``catalog_state`` (the catalog's fingerprint) the rows kept for it answer, and only
    the others are read; without it, everything is read in one query with the filters in SQL.
    Raw SQL: a list reads a few hundred of these rows, and building model instances would cost
    more than the query (``Filters.sql`` is the filters' SQL form)."""
    ids = list(dict.fromkeys(ids))
    if not ids and curated <= 0:
        return {}, []
    wanted = set(rows).intersection(ids)
    if catalog_state is None:
        facts, curated_read = _facts_read(ids, wanted, filters, curated)
        return _with_curated(facts, curated_read)
    kept: dict[int, ItemFacts] = {}
    missing: list[int] = []
    for i in ids:
        fact = _KEPT.get((catalog_state, i))
        if fact is None or (fact.rest is None and i in wanted):
            missing.append(i)
        else:
            kept[i] = fact
    curated_kept = _curated_kept(catalog_state) if curated > 0 else []
    curated_read: list[ItemFacts] = []
    if missing or curated_kept is None:
        # the rows are read without the filters (what is kept must hold for any request); the
        # curated ones, when there are too many to keep, with them
        read, curated_read = _facts_read(
            missing, wanted, Filters(), curated if curated_kept is None else 0, filters
        )
        for i, fact in read.items():
            _KEPT.set((catalog_state, i), fact)
        kept.update(read)
    if filters.is_empty():  # a kept fact's ``passes`` (visible) is the answer
        facts = kept
        passing = (f for f in curated_kept or () if f.passes)
    else:
        facts = {i: _filtered(f, filters) for i, f in kept.items()}
        passing = (f for f in (_filtered(f, filters) for f in curated_kept or ()) if f.passes)
    if curated_kept:
        curated_read = list(itertools.islice(passing, curated))
    return _with_curated(facts, curated_read)


def _with_curated(
    facts: dict[int, ItemFacts], curated: list[ItemFacts]
) -> tuple[dict[int, ItemFacts], list[ItemFacts]]:
    """``facts`` with the ``curated`` items read beside them, and the curated items passing the
    filters among both, pinned first then by id."""
    chosen = {f.pk: f for f in facts.values() if f.passes and _is_curated(f)}
    for fact in curated:
        fact = facts.setdefault(fact.pk, fact)
        chosen[fact.pk] = fact
    return facts, sorted(chosen.values(), key=lambda f: (not f.is_pinned, f.pk))


def _is_curated(fact: ItemFacts) -> bool:
    return bool(fact.is_pinned or fact.is_featured or fact.boost)


def _filtered(fact: ItemFacts, filters: Filters) -> ItemFacts:
    """``fact`` (``passes``: visible) under ``filters``."""
    if not fact.passes:
        return fact
    if filters.admits(pk=fact.pk, genres=fact.genres, year=fact.year):
        return fact
    return replace(fact, passes=False)


def _curated_kept(catalog_state: str) -> list[ItemFacts] | None:
    """Every visible curated item, pinned first then by id (None: more than CURATED_KEPT)."""
    kept = _CURATED.get(catalog_state)
    if kept is None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {_FACT_COLUMNS}, TRUE FROM {Item._meta.db_table} i"
                " WHERE (i.is_pinned OR i.is_featured OR i.boost <> 0) AND NOT i.is_hidden"
                " ORDER BY i.is_pinned DESC, i.id LIMIT %s",
                [CURATED_KEPT + 1],
            )
            kept = [ItemFacts(*row) for row in cursor.fetchall()]
        _CURATED.set(catalog_state, kept)
    return kept if len(kept) <= CURATED_KEPT else None


def _facts_read(
    ids: list[int],
    wanted: set[int],
    filters: Filters,
    curated: int,
    curated_filters: Filters | None = None,
) -> tuple[dict[int, ItemFacts], list[ItemFacts]]:
    """One query: the facts of ``ids`` under ``filters`` (the rest of the row for ``wanted``),
    and up to ``curated`` curated items under ``curated_filters`` (default ``filters``)."""
    table = Item._meta.db_table
    where, params = filters.sql("i")
    sql = (
        f"(SELECT {_FACT_COLUMNS}, (NOT i.is_hidden{where}), TRUE, {_ROW_COLUMNS}"
        f" FROM {table} i WHERE i.id = ANY(%s)) UNION ALL"
        f" (SELECT {_FACT_COLUMNS}, (NOT i.is_hidden{where}), FALSE, {_ROW_NULLS}"
        f" FROM {table} i WHERE i.id = ANY(%s))"
    )
    args: list = [
        *params,
        [i for i in ids if i in wanted],
        *params,
        [i for i in ids if i not in wanted],
    ]
    if curated > 0:
        c_where, c_params = (curated_filters or filters).sql("i")
        # NULL in the column that says whether the rest of the row was read: a curated row
        sql = (
            f"{sql} UNION ALL (SELECT {_FACT_COLUMNS}, TRUE, NULL, {_ROW_NULLS} FROM {table} i"
            f" WHERE (i.is_pinned OR i.is_featured OR i.boost <> 0) AND NOT i.is_hidden{c_where}"
            " ORDER BY i.is_pinned DESC, i.id LIMIT %s)"
        )
        args += [*c_params, curated]
    facts: dict[int, ItemFacts] = {}
    curated_rows: list[ItemFacts] = []
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        for row in cursor.fetchall():
            if row[9] is None:  # a row of the curated query
                curated_rows.append(ItemFacts(*row[:9]))
            else:
                facts[row[0]] = ItemFacts(*row[:9], rest=row[10:] if row[9] else None)
    return facts, curated_rows


# --- contributions ----------------------------------------------------------------------------------


def strongest_contributions(
    part: np.ndarray, history_ids: np.ndarray, candidate_ids: np.ndarray, rest: bool = True
) -> dict[int, list[Contribution]]:
    """candidate -> its (up to MAX_EVIDENCE_ITEMS) strongest positive history contributions,
    plus ``(-1, rest)``: what every other history item added, so that each named item's share
    is taken against the whole positive score. ``part[r, c]``: history item r's part in c.
    ``rest=False``: the named items only (similarities, which do not add up to a score)."""
    if part.size == 0:
        return {}
    positive = np.maximum(part, 0.0)
    total = positive.sum(axis=0)
    k = min(MAX_EVIDENCE_ITEMS, part.shape[0])
    if part.shape[0] > k:
        best = np.argpartition(-part, k - 1, axis=0)[:k]
    else:
        best = np.broadcast_to(np.arange(part.shape[0])[:, None], part.shape)
    values = np.take_along_axis(part, best, axis=0)
    others = np.maximum(total - np.maximum(values, 0.0).sum(axis=0), 0.0)
    # one conversion to Python lists per array (column by column, a candidate's numbers would
    # cost a few numpy calls each)
    named = history_ids[best].T.tolist()
    values_of = values.T.tolist()
    others_of = others.tolist()
    out: dict[int, list[Contribution]] = {}
    for j, (item_id, item_total) in enumerate(
        zip(candidate_ids.tolist(), total.tolist(), strict=True)
    ):
        if item_total <= 0:
            continue
        pairs = [(h, v) for h, v in zip(named[j], values_of[j], strict=True) if v > 0]
        pairs.sort(key=lambda p: -p[1])
        if rest:
            pairs.append((-1, others_of[j]))
        out[item_id] = pairs
    return out


def _strongest(
    contributions: list[Contribution] | None, top: int = MAX_EVIDENCE_ITEMS
) -> list[Contribution] | None:
    """The ``top`` strongest named contributions, then ``(-1, rest)``: everything else that
    contributed, so each named share is taken against the whole positive score."""
    if not contributions:
        return contributions
    total = sum(w for _, w in contributions if w > 0)
    named = sorted((c for c in contributions if c[0] != -1 and c[1] > 0), key=lambda c: -c[1])
    best = named[:top]
    return best + [(-1, max(total - sum(w for _, w in best), 0.0))]


# --- evidence ---------------------------------------------------------------------------------------


def _evidence_for(
    item: Item | ItemFacts,
    contributions: list[Contribution] | None,
    titles: dict[int, str],
    genres: Counter,
    tags: Counter,
    source: str,
) -> list[Evidence]:
    evidence: list[Evidence] = []
    if item.is_pinned:
        evidence.append(Evidence("curated", "Pinned by staff", 1.0))
    elif item.is_featured:
        evidence.append(Evidence("curated", "Featured by staff", 1.0))
    elif item.boost:
        evidence.append(Evidence("curated", "Boosted by staff", float(item.boost)))
    if contributions:
        total = sum(w for _, w in contributions if w > 0) or 1.0
        named = [c for c in contributions if c[0] != -1]
        best = sorted(named, key=lambda c: -c[1])[:MAX_EVIDENCE_ITEMS]
        for h, w in best:
            if w > 0 and h in titles and h != -1:
                evidence.append(Evidence("history_item", titles[h], round(w / total, 4), item_id=h))
    for genre in sorted(set(item.genres), key=lambda g: -genres[g])[:2]:
        if genres[genre] > 0:
            evidence.append(Evidence("shared_attribute", f"genre: {genre}", float(genres[genre])))
    shared_tags = [t for t in {t.lower() for t in item.tags} if tags[t] > 0]
    for tag in sorted(shared_tags, key=lambda t: -tags[t])[:2]:
        evidence.append(Evidence("shared_attribute", f"tag: {tag}", float(tags[tag])))
    if source == "popular" and not any(e.kind == "curated" for e in evidence):
        evidence.append(Evidence("similar_users", "Popular with many users", 1.0))
    return evidence


# item (its row, or the facts read of it), score, source, contributions
Ranked = tuple["Item | ItemFacts", float, str, list[Contribution] | None]


PROFILE_SECONDS = 600

ProfileRow = tuple[int, str, "int | None", list[str], list[str]]  # id, title, year, genres, tags


@dataclass(frozen=True, slots=True)
class Profile:
    """What the evidence reads of a user's favourites: their labels (the history items a reason
    may name) and how many of them have each genre and tag (each favourite counts one once)."""

    labels: dict[int, str]
    genres: Counter
    tags: Counter

    @classmethod
    def of(cls, rows: Iterable[ProfileRow]) -> Profile:
        rows = list(rows)
        return cls(
            labels={pk: display_label(title, year) for pk, title, year, *_r in rows},
            genres=Counter(g for *_r, genres, _t in rows for g in set(genres)),
            tags=Counter(t for *_r, tags in rows for t in {t.lower() for t in tags}),
        )


# by reference (``recsite.memo``): a list or similar items of the same user builds its profile
# once per catalog fingerprint instead of reading and counting 200 rows on every request
_PROFILES = Memo(size=1024, seconds=PROFILE_SECONDS)


def _profile_key(ids: Sequence[int], catalog_state: str) -> tuple:
    return catalog_state, tuple(ids)


def profile_cached(*, ids: Sequence[int], catalog_state: str | None) -> Profile | None:
    """The profile of the favourites ``ids`` as of ``catalog_state``, if built before."""
    if catalog_state is None or not ids:
        return None
    return _PROFILES.get(_profile_key(ids, catalog_state))


def profile_for(
    *, ids: Sequence[int], catalog_state: str | None, facts: dict[int, ItemFacts] | None = None
) -> Profile:
    """The favourites' profile, kept per (catalog fingerprint, ids): the same user's lists and
    similar items build it once until their history (the ids) or any item (the fingerprint:
    added, edited, curated, deleted) changes. Built from ``facts`` where they hold the rows."""
    cached = profile_cached(ids=ids, catalog_state=catalog_state)
    if cached is not None:
        return cached
    facts = facts or {}
    rows: list[ProfileRow] = [
        (f.pk, f.title, f.year, f.genres, f.tags) for i in ids if (f := facts.get(i))
    ]
    missing = [i for i in ids if i not in facts]
    if missing:
        rows += Item.objects.filter(pk__in=missing).values_list(
            "id", "title", "year", "genres", "tags"
        )
    profile = Profile.of(rows)
    if catalog_state is not None and ids:
        _PROFILES.set(_profile_key(ids, catalog_state), profile)
    return profile


def recommendations_build(
    ordered: Sequence[Ranked],
    history: History,
    facts: dict[int, ItemFacts] | None = None,
    catalog_state: str | None = None,
) -> list[Recommendation]:
    """Recommendations with their evidence, ranked in the order given. ``facts``: rows already
    read (the user's favourites and the contributing items); only those missing are queried.
    ``catalog_state`` (the catalog's fingerprint): the favourites' profile is kept per state."""
    # keep only each item's strongest contributors: they are what the evidence can name
    ordered = [
        (item, score, source, _strongest(contribs)) for item, score, source, contribs in ordered
    ]
    profile = profile_for(
        ids=history.liked[:PROFILE_ITEMS], catalog_state=catalog_state, facts=facts
    )
    # a contributor outside the profile (an older favourite) is named from its facts or a query
    named = {h for *_i, contribs in ordered for h, _ in contribs or [] if h != -1}
    titles = {h: profile.labels[h] for h in named if h in profile.labels}
    outside = [h for h in named if h not in titles]
    for h in outside:
        if (f := (facts or {}).get(h)) is not None:
            titles[h] = str(f)
    missing = [h for h in outside if h not in titles]
    if missing:
        for pk, title, year in Item.objects.filter(pk__in=missing).values_list(
            "id", "title", "year"
        ):
            titles[pk] = display_label(title, year)
    genres, tags = profile.genres, profile.tags
    out: list[Recommendation] = []
    for rank, (item, score, source, contribs) in enumerate(ordered, start=1):
        evidence = _evidence_for(item, contribs, titles, genres, tags, source)
        rec = Recommendation(
            item=item, rank=rank, score=float(score), source=source, evidence=evidence
        )
        rec.reason = reason_for(rec)
        out.append(rec)
    return out
