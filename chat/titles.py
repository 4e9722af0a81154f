"""Fuzzy title resolution in Python (the database has no pg_trgm), over a cached title index.

The index (every visible item's normalised title, year and popularity) lives in process memory and
is rebuilt when the catalog changes (checked with one cheap aggregate query per lookup batch).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass

from django.db import connection
from rapidfuzz import fuzz, process

ARTICLE_RE = re.compile(r"^(?P<body>.+), (?P<art>the|a|an|les|la|le|el|il|der|die|das)$")
PAREN_RE = re.compile(r"\s*\([^)]*\)")
DISPLAY_ARTICLE_RE = re.compile(r"^(?P<body>.+), (?P<art>The|A|An)$")
NON_WORD_RE = re.compile(r"[^a-z0-9 ]+")
SPACES_RE = re.compile(r"\s+")
MIN_SCORE = 86.0


def normalise(title: str) -> str:
    """'Matrix, The' -> 'the matrix'; 'Amélie (Fabuleux destin..., Le)' -> 'amelie'."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    text = PAREN_RE.sub("", text).strip()
    match = ARTICLE_RE.match(text)
    if match:
        text = f"{match['art']} {match['body']}"
    text = NON_WORD_RE.sub(" ", text.replace("&", " and "))
    return SPACES_RE.sub(" ", text).strip()


def without_article(norm: str) -> str:
    for art in ("the ", "a ", "an "):
        if norm.startswith(art):
            return norm[len(art) :]
    return norm


@dataclass
class TitleIndex:
    signature: tuple
    ids: list[int]
    keys: list[str]  # normalised titles without a leading article, parallel to ids
    titles: dict[int, str]  # display titles "Alien (1979)"
    popularity: dict[int, int]
    exact: dict[str, list[int]]  # key -> ids, most popular first
    genres: list[str]  # every genre of a visible item

    def mentions(self, text: str) -> set[int]:
        """Catalog titles of two words or more written in ``text`` (n-gram lookups, fast)."""
        words = without_article(normalise(text)).split()
        found: set[int] = set()
        for size in range(2, 7):
            for start in range(0, len(words) - size + 1):
                key = " ".join(words[start : start + size])
                if len(key) >= 8 and key in self.exact:
                    found.add(self.exact[key][0])
        return found


_lock = threading.Lock()
_index: TitleIndex | None = None


def _signature() -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), max(id), max(updated_at) FROM catalog_item WHERE NOT is_hidden"
        )
        return tuple(cursor.fetchone())


def _build(signature: tuple) -> TitleIndex:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.id, i.title, i.year, coalesce(c.n, 0) FROM catalog_item i"
            " LEFT JOIN (SELECT item_id, count(*) AS n FROM catalog_interaction GROUP BY item_id) c"
            " ON c.item_id = i.id WHERE NOT i.is_hidden"
        )
        rows = cursor.fetchall()
        cursor.execute("SELECT DISTINCT unnest(genres) FROM catalog_item WHERE NOT is_hidden")
        genres = sorted(r[0] for r in cursor.fetchall())
    ids: list[int] = []
    keys: list[str] = []
    titles: dict[int, str] = {}
    popularity: dict[int, int] = {}
    exact: dict[str, list[int]] = {}
    for item_id, title, year, n in rows:
        key = without_article(normalise(title))
        if not key:
            continue
        ids.append(item_id)
        keys.append(key)
        titles[item_id] = f"{title} ({year})" if year else title
        popularity[item_id] = int(n)
        exact.setdefault(key, []).append(item_id)
    for same in exact.values():
        same.sort(key=lambda i: -popularity[i])
    return TitleIndex(signature, ids, keys, titles, popularity, exact, genres)


def title_index() -> TitleIndex:
    global _index
    signature = _signature()
    with _lock:
        if _index is None or _index.signature != signature:
            _index = _build(signature)
        return _index


YEAR_IN_TEXT_RE = re.compile(r"\(?\b(1[89]\d\d|20\d\d)\)?\s*$")


def title_resolve(text: str, *, index: TitleIndex | None = None) -> int | None:
    """The catalog item a person most likely means by ``text`` (None when nothing is close).

    Exact normalised matches win (the most popular of remakes, or the one of the stated year);
    otherwise the best fuzzy match above a strict cut-off, ties broken by popularity.
    """
    index = index or title_index()
    year = None
    match = YEAR_IN_TEXT_RE.search(text.strip())
    if match:
        year = int(match.group(1))
        text = text.strip()[: match.start()]
    key = without_article(normalise(text))
    if len(key) < 2:
        return None
    if key in index.exact:
        same = index.exact[key]
        if year is not None:
            for item_id in same:
                if index.titles[item_id].endswith(f"({year})"):
                    return item_id
        return same[0]
    if len(key) < 4:
        return None
    hits = process.extract(key, index.keys, scorer=fuzz.ratio, limit=5, score_cutoff=MIN_SCORE)
    if not hits:
        return None
    best = max(hits, key=lambda h: (round(h[1]), index.popularity[index.ids[h[2]]]))
    return index.ids[best[2]]


def title_bare(title: str) -> str:
    """'Matrix, The' -> 'The Matrix'; 'Amélie (Fabuleux destin..., Le)' -> 'Amélie': the title
    as people write it."""
    text = PAREN_RE.sub("", title).strip() or title
    if match := DISPLAY_ARTICLE_RE.match(text):
        text = f"{match['art']} {match['body']}"
    return text


def title_key(title: str) -> str:
    """'Alien (1979)' -> 'alien'; 'Matrix, The' -> 'matrix'."""
    return without_article(normalise(YEAR_IN_TEXT_RE.sub("", title)))


def title_mentions(text: str, titles: dict[int, str]) -> set[int]:
    """Which of these items' titles are written in ``text`` (normalised, whole words)."""
    norm = f" {normalise(text)} "
    found: set[int] = set()
    for item_id, title in titles.items():
        key = title_key(title)
        if len(key) >= 4 and f" {key} " in norm:
            found.add(item_id)
    return found
