"""A user's recommendation list as the pages and the API serve it: one function, one cache.

:func:`user_list` applies the user's standing preferences (read from the catalog, here and
nowhere else on the way to a list) and caches the list until anything it depends on changes:
the user's interactions, any item (curation included), the active model version, ``n``, the
filters and the preferences. The key's parts come with the list's inputs, in their round trip
(the history's generation: ``history_read``); computing the list (scoring and evidence) costs
several times more.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from catalog.models import Preference

from . import selectors, storage
from .history import History
from .history_read import HistoryRead
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
    # the generation of the history's state row when it was read (None: the user had none),
    # and whether it speaks for the history (not in a transaction that changed interactions)
    history_generation: int | None = None
    history_current: bool = True


def preferences_and_history(*, user, version: ModelVersion | None = None) -> ListInputs:  # noqa: ANN001
    """The user's standing "no more" preferences, their history and, for a factor ``version``,
    their stored vector, in one round trip: the statements go to the database together (a
    history that changed since it was last read is stored packed after them: ``history_read``)."""
    read = HistoryRead(user.pk)
    sql = f"{_EXCLUSIONS_SQL}; {read.sql}"
    args = [user.pk, str(Preference.Kind.EXCLUDE_GENRE.value), *read.params]
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
        read.take(cursor)
        vector = candidates = None
        if factors:
            cursor.nextset()
            row = cursor.fetchone()
            vector = storage.user_vector_from_row(row)
            candidates = storage.user_candidates_from_row(row)
        history = read.finish(cursor)
    return ListInputs(preferences, history, vector, candidates, read.generation, read.clean)


def user_list(*, user, n: int, filters: Filters | None = None) -> UserList:  # noqa: ANN001
    """The user's list of ``n`` under ``filters`` and their standing preferences.

    Cached for ``API_RECOMMENDATIONS_CACHE_SECONDS`` (0: computed every time). The key holds
    the generation of the user's history (``history_read``), read with the list's inputs."""
    seconds = int(settings.API_RECOMMENDATIONS_CACHE_SECONDS)
    # the process's serving state: no query for the version
    version, catalog_fingerprint = serving_state()
    inputs = preferences_and_history(user=user, version=version)
    filters = filters_with_exclusions(
        filters or Filters(), tuple(p.value for p in inputs.preferences)
    )

    def compute() -> tuple[list[Recommendation], int | None]:
        recs = selectors.recommendations_for_user(
            user=user,
            n=n,
            filters=filters,
            version=version,
            history=inputs.history,
            user_vector=inputs.vector,
            user_candidates=inputs.candidates,
        )
        return recs, version.pk if version else None

    if seconds <= 0 or not inputs.history_current:
        return UserList(*compute(), inputs.preferences)
    parts = (
        user.pk,
        inputs.history_generation,
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
        cached = compute()
        cache.set(key, cached, seconds)
    return UserList(cached[0], cached[1], inputs.preferences)
