"""Reading a user's history: packed in one row while it is current, else from their interactions.

A long history is thousands of interaction rows; every list, item page and chat turn reads it.
``UserHistory`` keeps it packed beside a generation that triggers on the interactions bump when
the transaction that changed them commits (migration 0006). A read takes the state row with the caller's
other statements, and the rows only when the packed history is not current (once after each
change: a user's first list after a rating). A reader that read the rows stores them packed
under the generation it saw *before* reading them (a write between the two leaves the row not
current), and only while that generation is still the row's (a slower reader never replaces a
newer one). A user without a state row (no interaction yet) gets one holding their empty
history, unless a write created it meanwhile. A transaction that has changed interactions reads
the rows and stores nothing until it commits (its bumps are still to come).
"""

from __future__ import annotations

import numpy as np
from django.contrib.auth import get_user_model
from django.db import connection

from catalog.models import Interaction

from .history import History, history_from_rows
from .models import UserHistory

_STATE = UserHistory._meta.db_table
_USERS = get_user_model()._meta

# one parameter, the user's id
HISTORY_SQL = (
    f"SELECT item_id, kind, value FROM {Interaction._meta.db_table} WHERE user_id = %s"
    " ORDER BY timestamp DESC, id DESC"
)
# the user's state row (NULLs without one), and whether this transaction changed interactions
# (its bumps come when it commits: migration 0006): then the rows are read and nothing stored
STATE_SQL = (
    "SELECT s.generation, s.packed_generation, s.packed,"
    " current_setting('recsite.history_dirty', true) IS DISTINCT FROM '1'"
    f" FROM (SELECT 1) AS one LEFT JOIN {_STATE} AS s ON s.user_id = %s"
)
_STORE_SQL = (
    f"UPDATE {_STATE} SET packed = %s, packed_generation = %s WHERE user_id = %s"
    " AND generation = %s"
)
# a user no write has given a state row yet (none, or none since the migration's backfill): a
# write that lands meanwhile has created the row, and this one does nothing
_CREATE_SQL = (
    f"INSERT INTO {_STATE} (user_id, generation, packed_generation, packed)"
    f" SELECT %s, 1, 1, %s WHERE EXISTS (SELECT 1 FROM {_USERS.db_table}"
    f" WHERE {_USERS.pk.column} = %s) ON CONFLICT (user_id) DO NOTHING"
)

# the layout of ``packed``: a header of int64 (this number, then the lengths of the parts), the
# favourites (most recent first), the rest of what was seen, the dismissed items, the ids with a
# value (int64), then their values (float64). A history packed under other rules reads as stale.
PACKED_FORMAT = 1
_HEADER = 5


def history_pack(history: History) -> bytes:
    """``history`` packed (its weights are all 1: the rows' history, before a version's)."""
    liked = set(history.liked)
    parts = [
        np.asarray(history.liked, dtype=np.int64),
        np.fromiter((i for i in history.seen if i not in liked), dtype=np.int64),
        np.fromiter(history.dismissed, dtype=np.int64),
        np.fromiter(history.values, dtype=np.int64, count=len(history.values)),
    ]
    header = np.array([PACKED_FORMAT, *(len(p) for p in parts)], dtype=np.int64)
    values = np.fromiter(history.values.values(), dtype=np.float64, count=len(history.values))
    return b"".join(p.tobytes() for p in (header, *parts, values))


def history_unpack(packed: bytes) -> History | None:
    """The history ``history_pack`` packed; None for another format or bytes that do not hold
    the lengths their header says (the rows are read again)."""
    if len(packed) < 8 * _HEADER:
        return None
    header = np.frombuffer(packed, dtype=np.int64, count=_HEADER).tolist()
    n_liked, n_seen, n_dismissed, n_values = header[1:]
    n_ids = n_liked + n_seen + n_dismissed + n_values
    if (
        header[0] != PACKED_FORMAT
        or min(header[1:]) < 0
        or len(packed) != 8 * (_HEADER + n_ids + n_values)
    ):
        return None
    ids = np.frombuffer(packed, dtype=np.int64, count=n_ids, offset=8 * _HEADER).tolist()
    values = np.frombuffer(
        packed, dtype=np.float64, count=n_values, offset=8 * (_HEADER + n_ids)
    ).tolist()
    liked = ids[:n_liked]
    seen = set(ids[: n_liked + n_seen])
    end = n_liked + n_seen + n_dismissed
    return History(
        liked=liked,
        seen=seen,
        dismissed=set(ids[n_liked + n_seen : end]),
        weights=dict.fromkeys(liked, 1.0),
        values=dict(zip(ids[end:], values, strict=True)),
    )


class HistoryRead:
    """A user's history read with a caller's batch of statements: send ``sql`` with ``params``
    among the caller's, hand the cursor to ``take`` at its result set, then call ``finish``
    once the batch's results are read (it reads the rows then, if it has to, and stores them)."""

    sql = STATE_SQL

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.params = [user_id]
        # after ``take``: the generation of the user's state row (None: no row), and whether this
        # transaction had changed no interaction (its bumps come when it commits: until then
        # neither the generation nor the packed history speaks for it)
        self.generation: int | None = None
        self.clean = True
        self._history: History | None = None

    def take(self, cursor) -> None:  # noqa: ANN001
        self.generation, packed_generation, packed, self.clean = cursor.fetchone()
        if self.clean and self.generation == packed_generation and packed is not None:
            self._history = history_unpack(bytes(packed))

    def finish(self, cursor) -> History:  # noqa: ANN001
        if self._history is None:
            cursor.execute(HISTORY_SQL, [self.user_id])
            self._history = history_from_rows(cursor.fetchall())
            if not self.clean:
                return self._history
            packed = history_pack(self._history)
            if self.generation is None:
                cursor.execute(_CREATE_SQL, [self.user_id, packed, self.user_id])
            else:
                generation = self.generation
                cursor.execute(_STORE_SQL, [packed, generation, self.user_id, generation])
        return self._history


def user_history_ids(*, user_id: int) -> History:
    read = HistoryRead(user_id)
    with connection.cursor() as cursor:
        cursor.execute(read.sql, read.params)
        read.take(cursor)
        return read.finish(cursor)
