"""The search list's relevance ranking as fixed statements (one; two or three when the typo
layer has room).

``catalog_search(..., sort="relevance")`` builds the ranking with the ORM: Q objects, CASE
expressions and a subquery compiled from a queryset. For one query that is read once (the API
ranks a new query's best 500 and keeps the list, ``recommender.search``) compiling those
expressions cost several times what PostgreSQL takes to run them. :func:`ranked_matches` writes
the same statements out: the same match (full text, the title substring through its trigrams,
the typo layer), the same rank, summed in the same order with the same parameters, so the rows
and their ranks are the ORM's to the last bit (``tests/catalog/test_search_sql.py`` holds them
equal over queries of every kind).
"""

from __future__ import annotations

from typing import NamedTuple

from django.db import connection
from django.db.models import Value
from django.db.models.expressions import RawSQL

from .query_words import query_words
from .selectors import (
    TYPO_MAX_MATCHES,
    TYPO_MIN_SCORE,
    TYPO_UNLESS_FOUND,
    WEBSEARCH_SYNTAX,
    popularity_prior,
    substring_prefilter,
    trigram_score,
    trigrams,
    typo_bonus,
    typo_candidates,
)

__all__ = ["ranked_matches"]

_TEXT_SEARCH = "websearch_to_tsquery(%s::regconfig, %s)"
_TITLE = 'UPPER("catalog_item"."title"::text)'


def _sql(expression: RawSQL | Value) -> tuple[str, list]:
    """A rank term's SQL and parameters (a Value is a 0.0 term, bound as the ORM binds it)."""
    if isinstance(expression, Value):
        return "%s", [expression.value]
    return expression.sql, list(expression.params)


class _Match(NamedTuple):
    where: str  # the filters' SQL
    params: list  # their parameters
    found: str  # the match's SQL (full text or title substring)
    found_params: list  # its parameters
    pattern: str  # the title's LIKE pattern (the rank's title term takes it too)


def _matches(text: str, genre: str, year_min: int | None, year_max: int | None) -> _Match:
    where, params = ['NOT "catalog_item"."is_hidden"'], []
    if genre:
        where.append('"catalog_item"."genres" @> (ARRAY[%s])::varchar(64)[]')
        params.append(genre)
    if year_min is not None:
        where.append('"catalog_item"."year" >= %s')
        params.append(year_min)
    if year_max is not None:
        where.append('"catalog_item"."year" <= %s')
        params.append(year_max)
    pattern = f"%{connection.ops.prep_for_like_query(text)}%"
    title = f"{_TITLE} LIKE UPPER(%s)"
    title_params: list = [pattern]
    inner = substring_prefilter(text)
    if inner:
        title = f'({title} AND "catalog_item"."title_trigrams" @> %s::varchar(3)[])'
        title_params.append(inner)
    found = f'("catalog_item"."search_vector" @@ ({_TEXT_SEARCH}) OR {title})'
    return _Match(" AND ".join(where), params, found, ["english", text, *title_params], pattern)


def _typos(text: str) -> dict:
    """``typo_matches(trigrams(text))``, once the caller knows the other layers left room: fewer
    matches than TYPO_UNLESS_FOUND and none titled ``text`` exactly."""
    grams = trigrams(text)
    candidates = typo_candidates(grams)
    score, score_params = _sql(trigram_score(grams))
    sql = (
        f'SELECT "catalog_item"."id", {score} FROM "catalog_item"'
        f' WHERE {candidates.sql} AND NOT "catalog_item"."is_hidden"'
        f" AND {score} >= %s ORDER BY 2 DESC, 1 ASC LIMIT %s"
    )
    args = [*score_params, *candidates.params, *score_params, TYPO_MIN_SCORE, TYPO_MAX_MATCHES]
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        return dict(cursor.fetchall())


def ranked_matches(
    *,
    query: str,
    genre: str = "",
    year_min: int | None = None,
    year_max: int | None = None,
    limit: int,
) -> list[tuple[int, float]] | None:
    """The best ``limit`` (item id, rank) of ``catalog_search(query=..., sort="relevance")``,
    best first, ties by id. None when the query's words leave no text to match (year words
    alone: that search has no rank, it lists by popularity).

    The matches are ranked first; only when they leave room for typos (fewer than a page, none
    titled as the query: what ``typo_matches``' ``unless_found`` checks inside its statement) are
    the typo layer's titles scored and the matches ranked again with them. A query that finds
    its title, or many, costs one statement: planning the typo layer's took longer than running
    the ranking."""
    words = query_words(query)
    text = words.text
    if not text:
        return None
    year_min = year_min if year_min is not None else words.year_min
    year_max = year_max if year_max is not None else words.year_max
    where, params, found, found_params, pattern = _matches(text, genre, year_min, year_max)
    prior, prior_params = _sql(popularity_prior())

    # enough rows to tell whether the matches leave room for typos, whatever ``limit``
    wanted = max(limit, TYPO_UNLESS_FOUND)

    def ranked(typos: dict[int, float]) -> list[tuple[int, float, bool]]:
        bonus, bonus_params = _sql(typo_bonus(typos))
        rank = (
            f'((((ts_rank("catalog_item"."search_vector", {_TEXT_SEARCH})'
            f" + CASE WHEN {_TITLE} LIKE UPPER(%s) THEN %s ELSE %s END)"
            f" + CASE WHEN {_TITLE} = UPPER(%s) THEN %s ELSE %s END) + ({bonus})) + ({prior}))"
        )
        rank_params = [
            "english",
            text,
            pattern,
            0.5,
            0.0,
            text,
            1.0,
            0.0,
            *bonus_params,
            *prior_params,
        ]
        matched, matched_params = found, list(found_params)
        if typos:
            matched = f'({found[1:-1]} OR "catalog_item"."id" = ANY(%s))'
            matched_params.append(list(typos))
        sql = (
            f'SELECT "catalog_item"."id", {rank},'
            ' lower("catalog_item"."title") = lower(%s)'
            f' FROM "catalog_item" WHERE {where} AND {matched}'
            " ORDER BY 2 DESC, 1 ASC LIMIT %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*rank_params, text, *params, *matched_params, wanted])
            return cursor.fetchall()

    rows = ranked({})
    room = len(rows) < TYPO_UNLESS_FOUND and not any(exact for *_r, exact in rows)
    if room and trigrams(text) and not WEBSEARCH_SYNTAX.search(text):
        typos = _typos(text)
        if typos:
            rows = ranked(typos)
    return [(item_id, rank) for item_id, rank, _exact in rows[:limit]]
