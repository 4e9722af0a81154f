"""Bulk writes of an import: COPY into temporary tables, then one set-based UPDATE and one
INSERT ... ON CONFLICT DO NOTHING per table, so 100k ratings import in a few seconds.

Everything runs inside ``locked_transaction``: one transaction under an advisory lock shared by
every import.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from .reports import TableCounts

_IMPORT_LOCK_KEY = 0x5EC517E  # pg_advisory_xact_lock key shared by every import


def _copy_rows(cursor, table: str, columns: list[str], rows: list[tuple]) -> None:
    raw = cursor.cursor  # the psycopg cursor behind Django's wrapper
    with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    # Temporary tables are never analyzed by autovacuum; without statistics the planner may
    # pick nested loops over 100k x 100k rows.
    cursor.execute(f"ANALYZE {table}")


def _drop_temp(cursor, *tables: str) -> None:
    # ON COMMIT DROP only fires at the outermost commit; an import nested in a larger transaction
    # (a test, a caller's atomic block) may run twice before that.
    for table in tables:
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{table}")


def ensure_users(cursor, usernames: set[str]) -> TableCounts:
    User = get_user_model()
    existing = set(User.objects.filter(username__in=usernames).values_list("username", flat=True))
    new = sorted(usernames - existing)
    User.objects.bulk_create(
        [User(username=u, password=make_password(None)) for u in new],
        batch_size=2000,
        ignore_conflicts=True,
    )
    cursor.execute("ANALYZE auth_user")
    return TableCounts(created=len(new), unchanged=len(existing))


def upsert_items(cursor, rows: list[tuple], *, update_description: bool) -> TableCounts:
    """rows: (external_id, title, year, genres, links_json, description, tags, metadata_json)."""
    _drop_temp(cursor, "tmp_item")
    cursor.execute(
        "CREATE TEMP TABLE tmp_item (external_id text PRIMARY KEY, title text, year int,"
        " genres varchar[], links jsonb, description text, tags varchar[], metadata jsonb)"
        " ON COMMIT DROP"
    )
    _copy_rows(
        cursor,
        "tmp_item",
        ["external_id", "title", "year", "genres", "links", "description", "tags", "metadata"],
        rows,
    )
    # MovieLens has no descriptions/metadata: never blank what staff wrote.
    description = (
        "description = t.description, tags = t.tags, metadata = i.metadata || t.metadata,"
        if update_description
        else ""
    )
    compare = (
        "(i.title, i.year, i.genres, i.links, i.description, i.tags, i.metadata)"
        " IS DISTINCT FROM (t.title, t.year, t.genres, i.links || t.links, t.description, t.tags,"
        " i.metadata || t.metadata)"
        if update_description
        else "(i.title, i.year, i.genres, i.links) IS DISTINCT FROM"
        " (t.title, t.year, t.genres, i.links || t.links)"
    )
    cursor.execute(
        f"UPDATE catalog_item i SET title = t.title, year = t.year, genres = t.genres,"
        f" links = i.links || t.links, {description} updated_at = now()"
        f" FROM tmp_item t WHERE i.external_id = t.external_id AND {compare}"
    )
    updated = cursor.rowcount
    cursor.execute(
        "INSERT INTO catalog_item (external_id, title, year, genres, links, description, tags,"
        " metadata, is_hidden, is_featured, is_pinned, boost, created_at, updated_at)"
        " SELECT t.external_id, t.title, t.year, t.genres, t.links, t.description, t.tags,"
        " t.metadata, false, false, false, 0, now(), now() FROM tmp_item t"
        " ON CONFLICT (external_id) DO NOTHING"
    )
    created = cursor.rowcount
    cursor.execute("ANALYZE catalog_item")  # later statements join it; see _copy_rows
    return TableCounts(created=created, updated=updated, unchanged=len(rows) - created - updated)


def upsert_interactions(cursor, rows: list[tuple], source: str) -> TableCounts:
    """rows: (username, item external_id, kind, value, timestamp or None)."""
    _drop_temp(cursor, "tmp_interaction", "tmp_interaction_ids")
    cursor.execute(
        "CREATE TEMP TABLE tmp_interaction (username text, external_id text, kind text,"
        " value double precision, ts timestamptz, PRIMARY KEY (username, external_id, kind))"
        " ON COMMIT DROP"
    )
    _copy_rows(cursor, "tmp_interaction", ["username", "external_id", "kind", "value", "ts"], rows)
    cursor.execute(
        "CREATE TEMP TABLE tmp_interaction_ids ON COMMIT DROP AS"
        " SELECT u.id AS user_id, i.id AS item_id, t.kind, t.value, t.ts"
        " FROM tmp_interaction t JOIN auth_user u ON u.username = t.username"
        " JOIN catalog_item i ON i.external_id = t.external_id"
    )
    # fresh statistics for both sides of the joins below (the target may have just been
    # emptied or filled in this same transaction)
    cursor.execute("ANALYZE tmp_interaction_ids")
    cursor.execute("ANALYZE catalog_interaction")
    cursor.execute(
        "UPDATE catalog_interaction x SET value = t.value, timestamp = COALESCE(t.ts, x.timestamp)"
        " FROM tmp_interaction_ids t"
        " WHERE x.user_id = t.user_id AND x.item_id = t.item_id AND x.kind = t.kind"
        " AND (x.value IS DISTINCT FROM t.value OR (t.ts IS NOT NULL AND x.timestamp <> t.ts))"
    )
    updated = cursor.rowcount
    cursor.execute(
        "INSERT INTO catalog_interaction (user_id, item_id, kind, value, timestamp, source)"
        " SELECT t.user_id, t.item_id, t.kind, t.value, COALESCE(t.ts, now()), %s"
        " FROM tmp_interaction_ids t ON CONFLICT (user_id, item_id, kind) DO NOTHING",
        [source],
    )
    created = cursor.rowcount
    return TableCounts(created=created, updated=updated, unchanged=len(rows) - created - updated)


def insert_taggings(cursor, rows: list[tuple]) -> TableCounts:
    """rows: (username, item external_id, tag, timestamp). Then refresh Item.tags."""
    _drop_temp(cursor, "tmp_tagging")
    cursor.execute(
        "CREATE TEMP TABLE tmp_tagging (username text, external_id text, tag text,"
        " ts timestamptz) ON COMMIT DROP"
    )
    _copy_rows(cursor, "tmp_tagging", ["username", "external_id", "tag", "ts"], rows)
    cursor.execute(
        "INSERT INTO catalog_tagging (user_id, item_id, tag, timestamp)"
        " SELECT u.id, i.id, t.tag, COALESCE(t.ts, now()) FROM tmp_tagging t"
        " JOIN auth_user u ON u.username = t.username"
        " JOIN catalog_item i ON i.external_id = t.external_id"
        " ON CONFLICT (user_id, item_id, tag) DO NOTHING"
    )
    created = cursor.rowcount
    cursor.execute("ANALYZE catalog_tagging")
    # Item.tags: distinct tags, most used first, case-insensitively deduplicated.
    cursor.execute(
        "WITH agg AS (SELECT item_id, array_agg(tag ORDER BY n DESC, tag)::varchar[] AS tags FROM ("
        "  SELECT item_id, min(tag) AS tag, count(*) AS n FROM catalog_tagging"
        "  WHERE item_id IN (SELECT i.id FROM catalog_item i JOIN tmp_tagging t"
        "                    ON t.external_id = i.external_id)"
        "  GROUP BY item_id, lower(tag)) s GROUP BY item_id)"
        " UPDATE catalog_item i SET tags = agg.tags, updated_at = now() FROM agg"
        " WHERE i.id = agg.item_id AND i.tags IS DISTINCT FROM agg.tags"
    )
    return TableCounts(created=created, unchanged=len(rows) - created)


@contextmanager
def locked_transaction() -> Iterator[CursorWrapper]:
    """One transaction holding the import lock; yields the cursor the bulk writes run on."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_IMPORT_LOCK_KEY])
        yield cursor


def json_text(value: dict) -> str:
    """A dict as the text COPY reads into a jsonb column; same dict, same text."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
