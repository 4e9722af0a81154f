"""The MovieLens importer: ml-latest-small's layout (movies, links, ratings and tags CSV files),
and GroupLens's older ones read through ``grouplens``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from catalog.models import Interaction, Item
from catalog.services import items_changed_announce
from recsite.exceptions import ApplicationError

from .grouplens import layout_of
from .reading import (
    ErrorLog,
    parse_float,
    parse_int,
    read_csv,
    row_timestamp,
    split_list,
    split_title_year,
)
from .reports import ImportReport, Progress
from .writing import (
    ensure_users,
    insert_taggings,
    json_text,
    locked_transaction,
    upsert_interactions,
    upsert_items,
)

MOVIELENS_USER_PREFIX = "ml_"


def later(old: datetime | None, new: datetime | None) -> bool:
    """Whether a repeated rating replaces the one read before: the latest stamp wins; between
    rows without stamps, the one further down the file."""
    return old is None or (new is not None and old <= new)


def movielens_import(*, path: Path, progress: Progress | None = None) -> ImportReport:
    """Import an ml-latest-small style folder: movies.csv (required), ratings.csv, tags.csv,
    links.csv (each optional), or one in GroupLens's older layouts (``grouplens``: ML-100K's
    u.item and u.data, ML-1M's and ML-10M's movies.dat, ratings.dat and tags.dat). MovieLens
    users become Django users ``ml_<userId>`` with unusable passwords.

    Ratings, tags and links may name a movie that is only in the catalog, not in this movies.csv.
    """
    say = progress or (lambda _msg: None)
    path = Path(path)
    if not path.is_dir():
        raise ApplicationError(f"{path} is not a folder with movies.csv, ratings.csv, ...")
    errors = ErrorLog()
    legacy = layout_of(path)
    if legacy is not None:
        say(f"{path}: GroupLens's {legacy.name} layout")

    def file(kind: str) -> str | None:
        """The file that holds ``kind`` (movies, ratings, tags, links) in this folder's layout."""
        name = legacy.file(kind) if legacy is not None else f"{kind}.csv"
        return name if name is not None and (path / name).exists() else None

    def rows(kind: str, required: list[str], optional: list[str] | None = None):
        if legacy is not None:
            return legacy.rows(path, kind, errors)
        return read_csv(path / f"{kind}.csv", required, errors, optional=optional)

    movies_file = file("movies") or "movies.csv"

    movies: dict[str, tuple] = {}
    for line, row in rows("movies", ["movieId", "title", "genres"]):
        try:
            movie_id = str(parse_int(row["movieId"], "movieId", minimum=1))
        except ValueError as exc:
            errors.add(movies_file, line, str(exc))
            continue
        if not row["title"].strip():
            errors.add(movies_file, line, "title is empty")
            continue
        if movie_id in movies:
            errors.add(movies_file, line, f"duplicate movieId {movie_id}")
            continue
        title, year = split_title_year(row["title"])
        movies[movie_id] = (movie_id, title, year, split_list(row["genres"]))
    say(f"{movies_file}: {len(movies):,} movies read")

    known_ids = set(movies) | set(Item.objects.values_list("external_id", flat=True))

    def item_ref(file: str, line: int, value: str) -> str | None:
        try:
            movie_id = str(parse_int(value, "movieId", minimum=1))
        except ValueError as exc:
            errors.add(file, line, str(exc))
            return None
        if movie_id not in known_ids:
            errors.add(
                file, line, f"unknown movieId {movie_id} (not in {movies_file} nor the catalog)"
            )
            return None
        return movie_id

    links: dict[str, dict[str, str]] = {}
    if file("links"):
        for line, row in rows("links", ["movieId", "imdbId", "tmdbId"]):
            movie_id = item_ref("links.csv", line, row["movieId"])
            if movie_id is None:
                continue
            entry: dict[str, str] = {}
            try:
                if row["imdbId"].strip():
                    entry["imdb"] = (
                        f"https://www.imdb.com/title/tt{parse_int(row['imdbId'], 'imdbId'):07d}/"
                    )
                if row["tmdbId"].strip():
                    entry["tmdb"] = (
                        f"https://www.themoviedb.org/movie/{parse_int(row['tmdbId'], 'tmdbId')}"
                    )
            except ValueError as exc:
                errors.add("links.csv", line, str(exc))
                continue
            links[movie_id] = entry
        say(f"links.csv: {len(links):,} links read")

    ratings: dict[tuple[str, str], tuple] = {}
    if ratings_file := file("ratings"):
        for line, row in rows("ratings", ["userId", "movieId", "rating"], ["timestamp"]):
            try:
                user = MOVIELENS_USER_PREFIX + str(parse_int(row["userId"], "userId", minimum=1))
                value = parse_float(row["rating"], "rating")
                if not 0.5 <= value <= 5.0:
                    raise ValueError(f"rating must be between 0.5 and 5, got {value:g}")
                ts = row_timestamp(row)
            except ValueError as exc:
                errors.add(ratings_file, line, str(exc))
                continue
            movie_id = item_ref(ratings_file, line, row["movieId"])
            if movie_id is None:
                continue
            key = (user, movie_id)
            if key not in ratings or later(ratings[key][4], ts):
                ratings[key] = (user, movie_id, Interaction.Kind.RATING, value, ts)
        undated = sum(1 for r in ratings.values() if r[4] is None)
        say(f"{ratings_file}: {len(ratings):,} ratings read")
        if undated:
            say(f"{ratings_file}: {undated:,} ratings without a timestamp get the import time")

    taggings: dict[tuple[str, str, str], tuple] = {}
    if tags_file := file("tags"):
        for line, row in rows("tags", ["userId", "movieId", "tag"], ["timestamp"]):
            try:
                user = MOVIELENS_USER_PREFIX + str(parse_int(row["userId"], "userId", minimum=1))
                ts = row_timestamp(row)
            except ValueError as exc:
                errors.add(tags_file, line, str(exc))
                continue
            tag = row["tag"].strip()
            if not tag:
                errors.add(tags_file, line, "tag is empty")
                continue
            movie_id = item_ref(tags_file, line, row["movieId"])
            if movie_id is None:
                continue
            taggings[(user, movie_id, tag[:255])] = (user, movie_id, tag[:255], ts)
        say(f"{tags_file}: {len(taggings):,} tags read")

    errors.raise_if_any()
    if not movies and not ratings:
        raise ApplicationError(f"nothing to import in {path}")

    report = ImportReport()
    with locked_transaction() as cursor:
        item_rows = [
            (mid, title, year, genres, json_text(links.get(mid, {})), "", [], "{}")
            for mid, title, year, genres in movies.values()
        ]
        say("writing items ...")
        report.tables["items"] = upsert_items(cursor, item_rows, update_description=False)
        usernames = {r[0] for r in ratings.values()} | {t[0] for t in taggings.values()}
        say(f"writing {len(usernames):,} users ...")
        report.tables["users"] = ensure_users(cursor, usernames)
        say("writing ratings ...")
        report.tables["ratings"] = upsert_interactions(
            cursor, list(ratings.values()), Interaction.Source.IMPORT
        )
        say("writing tags ...")
        report.tables["tags"] = insert_taggings(cursor, list(taggings.values()))
        if report.tables["items"].created or report.tables["items"].updated or taggings:
            items_changed_announce(item_ids=None)
    return report
