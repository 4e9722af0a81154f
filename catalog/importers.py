"""Catalog imports: MovieLens (ml-latest-small layout) and a generic items/interactions CSV.

Every import follows the same rules (DESIGN.md, reliability):
1. Read and validate *every* file completely before writing anything. Each bad row is reported
   with its file and line number (the header is line 1).
2. Write everything in one transaction, under an advisory lock: a file set is imported whole or
   not at all, and two imports never interleave.
3. Idempotent: rows are matched on natural keys (item external id, username, (user, item, kind))
   and only rows whose values differ are updated, so a second run reports 0 created, 0 updated.

Bulk writes go through PostgreSQL COPY into temporary tables, then one set-based UPDATE and one
INSERT ... WHERE NOT EXISTS per table: 100k ratings import in a few seconds.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction

from recsite.exceptions import ApplicationError

from .models import Interaction
from .services import items_changed_announce

Progress = Callable[[str], None]

MOVIELENS_USER_PREFIX = "ml_"
MAX_REPORTED_ERRORS = 200
_IMPORT_LOCK_KEY = 0x5EC517E  # pg_advisory_xact_lock key shared by every import
_YEAR_RE = re.compile(r"\s*\((\d{4})(?:[–-]\d{0,4})?\)\s*$")


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}: {self.message}"


class ImportFailed(ApplicationError):
    """Raised with every bad row found; nothing was written."""

    def __init__(self, errors: list[RowError], total: int | None = None):
        total = total if total is not None else len(errors)
        shown = errors[:MAX_REPORTED_ERRORS]
        super().__init__(
            f"import rejected: {total} bad row(s); nothing was written",
            extra={"errors": [str(e) for e in shown], "error_count": total},
        )
        self.errors = shown
        self.total = total


@dataclass
class TableCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


@dataclass
class ImportReport:
    tables: dict[str, TableCounts] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [f"{name}: {counts}" for name, counts in self.tables.items()]

    @property
    def changed(self) -> bool:
        return any(c.created or c.updated for c in self.tables.values())


# --- reading ------------------------------------------------------------------------------------


class ErrorLog:
    def __init__(self) -> None:
        self.errors: list[RowError] = []
        self.total = 0

    def add(self, file: str, line: int, message: str) -> None:
        self.total += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(file, line, message))

    def raise_if_any(self) -> None:
        if self.total:
            raise ImportFailed(self.errors, self.total)


def read_csv(
    path: Path, required: list[str], errors: ErrorLog, optional: list[str] | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) for each data row; problems go to ``errors``.

    Accepts UTF-8 (with or without BOM), LF or CRLF. Reports an empty file, undecodable lines,
    missing columns and rows with the wrong number of fields.
    """
    name = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        errors.add(name, 0, f"cannot read file: {exc.strerror or exc}")
        return
    if not raw.strip():
        errors.add(name, 1, "file is empty (expected a header row)")
        return
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        for number, line in enumerate(raw.split(b"\n"), start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                errors.add(name, number, "not valid UTF-8 (wrong encoding?)")
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        errors.add(name, 1, f"unreadable header: {exc}")
        return
    missing = [c for c in required if c not in header]
    if missing:
        errors.add(name, 1, f"missing column(s): {', '.join(missing)} (header: {','.join(header)})")
        return
    width = len(header)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.add(name, reader.line_num, f"malformed CSV: {exc}")
            continue
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line
        if len(fields) != width:
            errors.add(name, reader.line_num, f"expected {width} fields, found {len(fields)}")
            continue
        yield reader.line_num, dict(zip(header, fields, strict=True))


def _int(value: str, what: str, *, minimum: int | None = None) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise ValueError(f"{what} must be a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {number}")
    return number


def _float(value: str, what: str) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return number


def _timestamp(value: str, what: str = "timestamp") -> datetime:
    value = value.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        seconds = float(value)
        if seconds < 0:
            raise ValueError(f"{what} must not be negative, got {value!r}")
        return datetime.fromtimestamp(seconds, tz=UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} must be unix seconds or ISO 8601, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def split_title_year(raw_title: str) -> tuple[str, int | None]:
    """'Toy Story (1995)' -> ('Toy Story', 1995). Titles without a year keep their text."""
    title = raw_title.strip()
    match = _YEAR_RE.search(title)
    if not match:
        return title, None
    return title[: match.start()].strip() or title, int(match.group(1))


def _split_list(value: str) -> list[str]:
    out: list[str] = []
    for part in value.split("|"):
        part = part.strip()
        if part and part != "(no genres listed)" and part not in out:
            out.append(part)
    return out


# --- writing ------------------------------------------------------------------------------------


def _copy(cursor, table: str, columns: list[str], rows: list[tuple]) -> None:
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


def _ensure_users(cursor, usernames: set[str]) -> TableCounts:
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


def _upsert_items(cursor, rows: list[tuple], *, update_description: bool) -> TableCounts:
    """rows: (external_id, title, year, genres, links_json, description, tags, metadata_json)."""
    _drop_temp(cursor, "tmp_item")
    cursor.execute(
        "CREATE TEMP TABLE tmp_item (external_id text PRIMARY KEY, title text, year int,"
        " genres varchar[], links jsonb, description text, tags varchar[], metadata jsonb)"
        " ON COMMIT DROP"
    )
    _copy(
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
    cursor.execute("ANALYZE catalog_item")  # later statements join it; see _copy
    return TableCounts(created=created, updated=updated, unchanged=len(rows) - created - updated)


def _upsert_interactions(cursor, rows: list[tuple], source: str) -> TableCounts:
    """rows: (username, item external_id, kind, value, timestamp or None)."""
    _drop_temp(cursor, "tmp_interaction", "tmp_interaction_ids")
    cursor.execute(
        "CREATE TEMP TABLE tmp_interaction (username text, external_id text, kind text,"
        " value double precision, ts timestamptz, PRIMARY KEY (username, external_id, kind))"
        " ON COMMIT DROP"
    )
    _copy(cursor, "tmp_interaction", ["username", "external_id", "kind", "value", "ts"], rows)
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


def _insert_taggings(cursor, rows: list[tuple]) -> TableCounts:
    """rows: (username, item external_id, tag, timestamp). Then refresh Item.tags."""
    _drop_temp(cursor, "tmp_tagging")
    cursor.execute(
        "CREATE TEMP TABLE tmp_tagging (username text, external_id text, tag text,"
        " ts timestamptz) ON COMMIT DROP"
    )
    _copy(cursor, "tmp_tagging", ["username", "external_id", "tag", "ts"], rows)
    cursor.execute(
        "INSERT INTO catalog_tagging (user_id, item_id, tag, timestamp)"
        " SELECT u.id, i.id, t.tag, t.ts FROM tmp_tagging t"
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


def _locked_transaction():
    atomic = transaction.atomic()

    class _Ctx:
        def __enter__(self):
            atomic.__enter__()
            cursor = connection.cursor()
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_IMPORT_LOCK_KEY])
            self.cursor = cursor
            return cursor

        def __exit__(self, *exc):
            self.cursor.close()
            return atomic.__exit__(*exc)

    return _Ctx()


def _json(value: dict) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# --- MovieLens ----------------------------------------------------------------------------------


def movielens_import(*, path: Path, progress: Progress | None = None) -> ImportReport:
    """Import an ml-latest-small style folder: movies.csv (required), ratings.csv, tags.csv,
    links.csv (each optional). MovieLens users become Django users ``ml_<userId>`` with unusable
    passwords."""
    say = progress or (lambda _msg: None)
    path = Path(path)
    if not path.is_dir():
        raise ApplicationError(f"{path} is not a folder with movies.csv, ratings.csv, ...")
    errors = ErrorLog()

    movies: dict[str, tuple] = {}
    for line, row in read_csv(path / "movies.csv", ["movieId", "title", "genres"], errors):
        try:
            movie_id = str(_int(row["movieId"], "movieId", minimum=1))
        except ValueError as exc:
            errors.add("movies.csv", line, str(exc))
            continue
        if not row["title"].strip():
            errors.add("movies.csv", line, "title is empty")
            continue
        if movie_id in movies:
            errors.add("movies.csv", line, f"duplicate movieId {movie_id}")
            continue
        title, year = split_title_year(row["title"])
        movies[movie_id] = (movie_id, title, year, _split_list(row["genres"]))
    say(f"movies.csv: {len(movies):,} movies read")

    from .models import Item

    known_ids = set(movies) | set(Item.objects.values_list("external_id", flat=True))

    def item_ref(file: str, line: int, value: str) -> str | None:
        try:
            movie_id = str(_int(value, "movieId", minimum=1))
        except ValueError as exc:
            errors.add(file, line, str(exc))
            return None
        if movie_id not in known_ids:
            errors.add(
                file, line, f"unknown movieId {movie_id} (not in movies.csv nor the catalog)"
            )
            return None
        return movie_id

    links: dict[str, dict[str, str]] = {}
    if (path / "links.csv").exists():
        for line, row in read_csv(path / "links.csv", ["movieId", "imdbId", "tmdbId"], errors):
            movie_id = item_ref("links.csv", line, row["movieId"])
            if movie_id is None:
                continue
            entry: dict[str, str] = {}
            try:
                if row["imdbId"].strip():
                    entry["imdb"] = (
                        f"https://www.imdb.com/title/tt{_int(row['imdbId'], 'imdbId'):07d}/"
                    )
                if row["tmdbId"].strip():
                    entry["tmdb"] = (
                        f"https://www.themoviedb.org/movie/{_int(row['tmdbId'], 'tmdbId')}"
                    )
            except ValueError as exc:
                errors.add("links.csv", line, str(exc))
                continue
            links[movie_id] = entry
        say(f"links.csv: {len(links):,} links read")

    ratings: dict[tuple[str, str], tuple] = {}
    if (path / "ratings.csv").exists():
        for line, row in read_csv(
            path / "ratings.csv", ["userId", "movieId", "rating", "timestamp"], errors
        ):
            try:
                user = MOVIELENS_USER_PREFIX + str(_int(row["userId"], "userId", minimum=1))
                value = _float(row["rating"], "rating")
                if not 0.5 <= value <= 5.0:
                    raise ValueError(f"rating must be between 0.5 and 5, got {value:g}")
                ts = _timestamp(row["timestamp"])
            except ValueError as exc:
                errors.add("ratings.csv", line, str(exc))
                continue
            movie_id = item_ref("ratings.csv", line, row["movieId"])
            if movie_id is None:
                continue
            key = (user, movie_id)
            if key not in ratings or ratings[key][4] <= ts:
                ratings[key] = (user, movie_id, Interaction.Kind.RATING, value, ts)
        say(f"ratings.csv: {len(ratings):,} ratings read")

    taggings: dict[tuple[str, str, str], tuple] = {}
    if (path / "tags.csv").exists():
        for line, row in read_csv(
            path / "tags.csv", ["userId", "movieId", "tag", "timestamp"], errors
        ):
            try:
                user = MOVIELENS_USER_PREFIX + str(_int(row["userId"], "userId", minimum=1))
                ts = _timestamp(row["timestamp"])
            except ValueError as exc:
                errors.add("tags.csv", line, str(exc))
                continue
            tag = row["tag"].strip()
            if not tag:
                errors.add("tags.csv", line, "tag is empty")
                continue
            movie_id = item_ref("tags.csv", line, row["movieId"])
            if movie_id is None:
                continue
            taggings[(user, movie_id, tag[:255])] = (user, movie_id, tag[:255], ts)
        say(f"tags.csv: {len(taggings):,} tags read")

    errors.raise_if_any()
    if not movies and not ratings:
        raise ApplicationError(f"nothing to import in {path}")

    report = ImportReport()
    with _locked_transaction() as cursor:
        item_rows = [
            (mid, title, year, genres, _json(links.get(mid, {})), "", [], "{}")
            for mid, title, year, genres in movies.values()
        ]
        # links for movies that are only in the catalog (not in this movies.csv)
        say("writing items ...")
        report.tables["items"] = _upsert_items(cursor, item_rows, update_description=False)
        usernames = {r[0] for r in ratings.values()} | {t[0] for t in taggings.values()}
        say(f"writing {len(usernames):,} users ...")
        report.tables["users"] = _ensure_users(cursor, usernames)
        say("writing ratings ...")
        report.tables["ratings"] = _upsert_interactions(
            cursor, list(ratings.values()), Interaction.Source.IMPORT
        )
        say("writing tags ...")
        report.tables["tags"] = _insert_taggings(cursor, list(taggings.values()))
        if report.tables["items"].created or report.tables["items"].updated or taggings:
            items_changed_announce(item_ids=None)
    return report


# --- generic CSV ----------------------------------------------------------------------------------

ITEMS_REQUIRED = ["external_id", "title"]
ITEMS_OPTIONAL = ["year", "description", "genres", "tags", "url"]
INTERACTIONS_REQUIRED = ["user", "item", "kind"]
INTERACTIONS_OPTIONAL = ["value", "timestamp"]


def catalog_csv_import(
    *,
    items_path: Path | None = None,
    interactions_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import any catalog from two CSV files (UTF-8, header row, LF or CRLF):

    items.csv: ``external_id,title`` required; ``year,description,genres,tags,url`` optional
    (genres and tags separated by ``|``); any other column is kept in the item's metadata.

    interactions.csv: ``user,item,kind`` required, ``value,timestamp`` optional. ``user`` is a
    username (created, with an unusable password, if new), ``item`` an external_id from items.csv
    or the catalog, ``kind`` one of rating / like / dismiss / view, ``value`` the rating (0.5-5,
    required for ratings), ``timestamp`` unix seconds or ISO 8601 (default: import time).
    """
    say = progress or (lambda _msg: None)
    if items_path is None and interactions_path is None:
        raise ApplicationError("give an items file, an interactions file, or both")
    errors = ErrorLog()
    items: dict[str, tuple] = {}
    if items_path is not None:
        items_path = Path(items_path)
        fname = items_path.name
        for line, row in read_csv(items_path, ITEMS_REQUIRED, errors):
            external_id = row["external_id"].strip()
            title = row["title"].strip()
            if not external_id or len(external_id) > 64:
                errors.add(fname, line, "external_id must be 1-64 characters")
                continue
            if not title:
                errors.add(fname, line, "title is empty")
                continue
            if external_id in items:
                errors.add(fname, line, f"duplicate external_id {external_id!r}")
                continue
            year = None
            if row.get("year", "").strip():
                try:
                    year = _int(row["year"], "year")
                    if not 1800 <= year <= 2200:
                        raise ValueError(f"year must be between 1800 and 2200, got {year}")
                except ValueError as exc:
                    errors.add(fname, line, str(exc))
                    continue
            links = {"url": row["url"].strip()} if row.get("url", "").strip() else {}
            extra = {
                k: v
                for k, v in row.items()
                if k not in ITEMS_REQUIRED + ITEMS_OPTIONAL and k and v.strip()
            }
            items[external_id] = (
                external_id,
                title[:500],
                year,
                _split_list(row.get("genres", "")),
                _json(links),
                row.get("description", "").strip(),
                _split_list(row.get("tags", "")),
                _json(extra),
            )
        say(f"{fname}: {len(items):,} items read")

    interactions: dict[tuple[str, str, str], tuple] = {}
    if interactions_path is not None:
        interactions_path = Path(interactions_path)
        fname = interactions_path.name
        from .models import Item

        known = set(items) | set(Item.objects.values_list("external_id", flat=True))
        kinds = set(Interaction.Kind.values)
        for line, row in read_csv(interactions_path, INTERACTIONS_REQUIRED, errors):
            user = row["user"].strip()
            item = row["item"].strip()
            kind = row["kind"].strip().lower()
            if not user or len(user) > 150:
                errors.add(fname, line, "user must be 1-150 characters")
                continue
            if kind not in kinds:
                errors.add(
                    fname, line, f"kind must be one of {', '.join(sorted(kinds))}, got {kind!r}"
                )
                continue
            if item not in known:
                errors.add(fname, line, f"unknown item {item!r} (not in items.csv nor the catalog)")
                continue
            value = None
            try:
                if row.get("value", "").strip():
                    value = _float(row["value"], "value")
                if kind == "rating":
                    if value is None:
                        raise ValueError("a rating needs a value")
                    if not 0.5 <= value <= 5.0:
                        raise ValueError(f"rating must be between 0.5 and 5, got {value:g}")
                ts = _timestamp(row["timestamp"]) if row.get("timestamp", "").strip() else None
            except ValueError as exc:
                errors.add(fname, line, str(exc))
                continue
            interactions[(user, item, kind)] = (user, item, kind, value, ts)
        say(f"{fname}: {len(interactions):,} interactions read")

    errors.raise_if_any()
    report = ImportReport()
    with _locked_transaction() as cursor:
        if items:
            say("writing items ...")
            report.tables["items"] = _upsert_items(
                cursor, list(items.values()), update_description=True
            )
            if report.tables["items"].created or report.tables["items"].updated:
                items_changed_announce(item_ids=None)
        if interactions:
            say("writing users ...")
            report.tables["users"] = _ensure_users(cursor, {k[0] for k in interactions})
            say("writing interactions ...")
            report.tables["interactions"] = _upsert_interactions(
                cursor, list(interactions.values()), Interaction.Source.IMPORT
            )
    return report
