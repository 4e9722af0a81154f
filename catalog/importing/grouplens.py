"""GroupLens's older MovieLens layouts, read as rows of the ml-latest-small layout.

- ML-100K: ``u.item`` (``id|title|release date|video date|IMDb URL|`` 19 genre flags) and
  ``u.data`` (``user<TAB>item<TAB>rating<TAB>timestamp``), ``u.genre`` naming the flags.
- ML-1M and ML-10M: ``movies.dat`` (``id::title::genres``), ``ratings.dat``
  (``user::item::rating::timestamp``) and, in ML-10M, ``tags.dat`` (``user::item::tag::timestamp``).

Neither has a header, so line numbers count from the first row. The files are Latin-1 where
they are not UTF-8 (ML-100K's and ML-1M's titles: "Misérables, Les"); each file is decoded as
UTF-8 when it can be, else as Latin-1, since every byte string is valid Latin-1 text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .reading import ErrorLog

__all__ = ["Layout", "layout_for_movies", "layout_of"]

#: ML-100K's genre flags in order, for a folder without ``u.genre``
ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)

Row = dict[str, str]
Parse = Callable[[list[str]], Row]


@dataclass(frozen=True)
class Source:
    """One file of a layout: its name, separator, field count and how a row maps to columns."""

    name: str
    separator: str
    fields: int
    parse: Parse


@dataclass(frozen=True)
class Layout:
    name: str
    movies: Source
    ratings: Source
    tags: Source | None

    def file(self, kind: str) -> str | None:
        source = getattr(self, kind, None)
        return source.name if source is not None else None

    def rows(self, folder: Path, kind: str, errors: ErrorLog) -> Iterator[tuple[int, Row]]:
        source: Source = getattr(self, kind)
        yield from _rows(folder / source.name, source, errors)


def _text(path: Path, errors: ErrorLog) -> str | None:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        errors.add(path.name, 0, f"cannot read file: {exc.strerror or exc}")
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _rows(path: Path, source: Source, errors: ErrorLog) -> Iterator[tuple[int, Row]]:
    text = _text(path, errors)
    if text is None:
        return
    if not text.strip():
        errors.add(source.name, 1, "file is empty")
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(source.separator)
        if len(fields) != source.fields:
            errors.add(source.name, number, f"expected {source.fields} fields, found {len(fields)}")
            continue
        yield number, source.parse(fields)


def _ml100k_genres(folder: Path) -> tuple[str, ...]:
    """u.genre's names by flag index (``name|index`` lines), else ML-100K's own list."""
    path = folder / "u.genre"
    if not path.exists():
        return ML100K_GENRES
    names: dict[int, str] = {}
    for line in path.read_bytes().decode("latin-1").splitlines():
        name, _, index = line.strip().rpartition("|")
        if name and index.isdigit():
            names[int(index)] = name
    if sorted(names) != list(range(len(names))) or len(names) != len(ML100K_GENRES):
        return ML100K_GENRES
    return tuple(names[i] for i in range(len(names)))


def _ml100k(folder: Path) -> Layout:
    genres = _ml100k_genres(folder)

    def movie(f: list[str]) -> Row:
        flags = f[5:]
        named = [g for g, flag in zip(genres, flags, strict=True) if flag.strip() == "1"]
        named = [g for g in named if g != "unknown"]
        return {"movieId": f[0], "title": f[1], "genres": "|".join(named)}

    def rating(f: list[str]) -> Row:
        return {"userId": f[0], "movieId": f[1], "rating": f[2], "timestamp": f[3]}

    return Layout(
        "ML-100K",
        Source("u.item", "|", 5 + len(genres), movie),
        Source("u.data", "\t", 4, rating),
        None,
    )


def _dat(folder: Path) -> Layout:
    def movie(f: list[str]) -> Row:
        return {"movieId": f[0], "title": f[1], "genres": f[2]}

    def rating(f: list[str]) -> Row:
        return {"userId": f[0], "movieId": f[1], "rating": f[2], "timestamp": f[3]}

    def tag(f: list[str]) -> Row:
        return {"userId": f[0], "movieId": f[1], "tag": f[2], "timestamp": f[3]}

    tags = Source("tags.dat", "::", 4, tag) if (folder / "tags.dat").exists() else None
    return Layout(
        "ML-1M / ML-10M",
        Source("movies.dat", "::", 3, movie),
        Source("ratings.dat", "::", 4, rating),
        tags,
    )


def layout_of(folder: Path) -> Layout | None:
    """The older layout ``folder`` holds, or None (ml-latest-small's CSV files, or nothing)."""
    if (folder / "movies.csv").exists():
        return None
    if (folder / "u.item").exists() and (folder / "u.data").exists():
        return _ml100k(folder)
    if (folder / "movies.dat").exists() and (folder / "ratings.dat").exists():
        return _dat(folder)
    return None


def layout_for_movies(path: Path) -> Layout | None:
    """The layout whose movies file ``path`` is (``u.item`` or ``movies.dat``), whatever else its
    folder holds (reading genres needs the movies file alone), or None for another file."""
    if path.name == "u.item":
        return _ml100k(path.parent)
    if path.name == "movies.dat":
        return _dat(path.parent)
    return None
