"""A user's recommendation list as the pages and the API serve it: one function, one cache.

:func:`user_list` applies the user's standing preferences (read from the catalog, here and
nowhere else on the way to a list) and caches the list until anything it depends on changes:
the user's interactions, any item (curation included), the active model version, ``n``, the
filters and the preferences. Building the key costs a couple of indexed aggregates; computing
the list (scoring and evidence) costs far more on a long history.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from catalog import selectors as catalog_selectors
from catalog.models import Preference

from . import selectors, storage
from .history import HISTORY_SQL, History, history_from_rows
from .models import ModelVersion
from .serving import serving_state, serving_state_forget
from .types import Filters, Recommendation

__all__ = [
    "ListInputs",
    "UserList",
    "preferences_and_history",
    "serving_state",
    "serving_state_forget",
    "user_list",
]


@dataclass
class UserList:
    recommendations: list[Recommendation]
    version_id: int | None  # the model version that ranked them (None: no model yet)
    preferences: list[Preference]  # the standing "no more X" left out, shown above the list


def filters_with_exclusions(filters: Filters, exclusions: tuple[str, ...]) -> Filters:
    """``filters`` plus the genres the user said "no more" of; a genre the filters ask for
    explicitly is not left out."""
    wanted = {g.lower() for g in filters.genres}
    extra = [g for g in exclusions if g.lower() not in wanted]
    if not extra:
        return filters
    return replace(filters, exclude_genres=tuple(dict.fromkeys((*filters.exclude_genres, *extra))))


# catalog.selectors.preference_list(user=..., kind=EXCLUDE_GENRE) as one fixed statement: the
# ORM compiled it anew on every list
_PREFERENCE_NAMES = [f.attname for f in Preference._meta.concrete_fields]
_EXCLUSIONS_SQL = (
    f"SELECT {', '.join(f.column for f in Preference._meta.concrete_fields)}"
    f" FROM {Preference._meta.db_table} WHERE user_id = %s AND kind = %s ORDER BY kind, value"
)


@dataclass
class ListInputs:
    preferences: list[Preference]
    history: History
    vector: np.ndarray | None  # the user's stored vector for a factor version (None: not read)
    candidates: storage.Candidates | None = None  # and its stored candidates


def preferences_and_history(*, user, version: ModelVersion | None = None) -> ListInputs:  # noqa: ANN001
    """The user's standing "no more" preferences, their history and, for a factor ``version``,
    their stored vector, in one round trip: the statements go to the database together."""
    sql = f"{_EXCLUSIONS_SQL}; {HISTORY_SQL}"
    args = [user.pk, str(Preference.Kind.EXCLUDE_GENRE.value), user.pk]
    factors = version is not None and version.serving == ModelVersion.Serving.FACTORS
    if factors:
        sql = f"{sql}; {storage.USER_VECTOR_SQL}"
        args += [version.pk, user.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        preferences = [
            Preference.from_db(connection.alias, _PREFERENCE_NAMES, r) for r in cursor.fetchall()
        ]
        cursor.nextset()
        history = history_from_rows(cursor.fetchall())
        vector = candidates = None
        if factors:
            cursor.nextset()
            row = cursor.fetchone()
            vector = storage.user_vector_from_row(row)
            candidates = storage.user_candidates_from_row(row)
    return ListInputs(preferences, history, vector, candidates)


def user_list(*, user, n: int, filters: Filters | None = None) -> UserList:  # noqa: ANN001
    """The user's list of ``n`` under ``filters`` and their standing preferences.

    Cached for ``API_RECOMMENDATIONS_CACHE_SECONDS`` (0: computed every time)."""
    seconds = int(settings.API_RECOMMENDATIONS_CACHE_SECONDS)
    if seconds <= 0:
        # the process's serving state, as the cached path reads it: no query for the version
        version = serving_state()[0]
        inputs = preferences_and_history(user=user, version=version)
        filters = filters_with_exclusions(
            filters or Filters(), tuple(p.value for p in inputs.preferences)
        )
        recs = selectors.recommendations_for_user(
            user=user,
            n=n,
            filters=filters,
            version=version,
            history=inputs.history,
            user_vector=inputs.vector,
            user_candidates=inputs.candidates,
        )
        return UserList(recs, version.pk if version else None, inputs.preferences)
    preferences = list(
        catalog_selectors.preference_list(user=user, kind=Preference.Kind.EXCLUDE_GENRE)
    )
    filters = filters_with_exclusions(filters or Filters(), tuple(p.value for p in preferences))
    version, catalog_fingerprint = serving_state()
    parts = (
        user.pk,
        catalog_selectors.user_history_fingerprint(user=user),
        catalog_fingerprint,
        version.pk if version else 0,
        version.activated_at.timestamp() if version and version.activated_at else 0,
        n,
        sorted(filters.genres),
        sorted(filters.exclude_genres),
        filters.year_min,
        filters.year_max,
        sorted(filters.exclude_ids),
        None if filters.include_ids is None else sorted(filters.include_ids),
    )
    key = "recs:user-list:" + hashlib.sha1(repr(parts).encode()).hexdigest()
    cached = cache.get(key)
    if cached is None:
        recs = selectors.recommendations_for_user(user=user, n=n, filters=filters, version=version)
        cached = (recs, version.pk if version else None)
        cache.set(key, cached, seconds)
    return UserList(cached[0], cached[1], preferences)
