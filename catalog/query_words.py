"""Year words in a search query or a chat message: "90s", "1990s", "'80s", "the nineties",
"after 2000", "not older than 1995", "before 1980", "1990-1995", "from 1999". The catalog search
turns them into year bounds and searches the rest, so "romantic comedy 90s" means romantic
comedies of 1990-1999; the chat's built-in parser reads a message's years with the same words.

A bare year ("1984", "2001") stays in the text: it is also a title.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_YEAR = r"(?P<year>1[89]\d\d|20\d\d)"
DECADE_RE = re.compile(r"(?<![\d\w])(?:'|(?P<century>19|20))?(?P<decade>\d)0'?s\b", re.I)
DECADE_WORDS = {
    "twenties": 1920,
    "thirties": 1930,
    "forties": 1940,
    "fifties": 1950,
    "sixties": 1960,
    "seventies": 1970,
    "eighties": 1980,
    "nineties": 1990,
}
DECADE_WORD_RE = re.compile(rf"\b(?:the\s+)?({'|'.join(DECADE_WORDS)})\b", re.I)
RANGE_RE = re.compile(
    r"\b(?:between\s+)?(1[89]\d\d|20\d\d)\s*(?:-|–|to|and)\s*(1[89]\d\d|20\d\d)\b", re.I
)
# The words of a lower and an upper bound, each with what it adds to the year: 1 leaves the
# year out ("after 1995": 1996 on), 0 keeps it ("since 1995", "not older than 1995").
AFTER_WORDS = {
    "after": 1,
    "from after": 1,
    "newer than": 1,
    "later than": 1,
    "post": 1,
    "since": 0,
    "not older than": 0,
    "no older than": 0,
    "nothing older than": 0,
}
BEFORE_WORDS = {
    "before": -1,
    "older than": -1,
    "earlier than": -1,
    "pre": -1,
    "until": 0,
    "up to": 0,
    "not newer than": 0,
    "no newer than": 0,
}
# "older than" inside "not older than" is a lower bound, never an upper one (and the same for
# "newer than"): a bound's words are never read after a negation
_NOT_NEGATED = "(?<!not )(?<!no )(?<!nothing )"


def _words_alternation(words: dict[str, int]) -> str:
    longest_first = sorted(words, key=len, reverse=True)
    return "|".join(r"\s+".join(map(re.escape, w.split())) for w in longest_first)


AFTER_RE = re.compile(
    rf"\b{_NOT_NEGATED}(?P<op>{_words_alternation(AFTER_WORDS)})\s+{_YEAR}\b", re.I
)
BEFORE_RE = re.compile(
    rf"\b{_NOT_NEGATED}(?P<op>{_words_alternation(BEFORE_WORDS)})\s+{_YEAR}\b", re.I
)
EXACT_RE = re.compile(rf"\b(?:from|in|of)\s+{_YEAR}\b", re.I)


@dataclass(frozen=True)
class QueryWords:
    text: str  # the query without its year words
    year_min: int | None = None
    year_max: int | None = None


def _decade_start(m: re.Match[str]) -> int:
    digit = int(m["decade"])
    if m["century"]:
        return int(m["century"]) * 100 + digit * 10
    return (2000 if digit <= 2 else 1900) + digit * 10


def _op(m: re.Match[str]) -> str:
    return " ".join(m["op"].lower().split())


def query_words(query: str) -> QueryWords:
    """``query`` split into the words to search and the year bounds its year words ask for.

    A range and lower and upper bounds combine, the narrowest winning ("after 1990 and before
    2000"); a decade narrows them ("90s, after 1995": 1996-1999) unless they contradict it, when the explicit
    bounds stand; "from 1999" alone means that year.
    """
    # NUL separates nothing a person typed, and PostgreSQL refuses it in any string it compares
    rest = f" {(query or '').replace(chr(0), ' ')} "
    lo: int | None = None
    hi: int | None = None
    if m := RANGE_RE.search(rest):
        lo, hi = sorted((int(m.group(1)), int(m.group(2))))
        rest = rest.replace(m.group(0), " ")
    for m in list(AFTER_RE.finditer(rest)):
        year = int(m["year"]) + AFTER_WORDS[_op(m)]
        lo = year if lo is None else max(lo, year)
        rest = rest.replace(m.group(0), " ")
    for m in list(BEFORE_RE.finditer(rest)):
        year = int(m["year"]) + BEFORE_WORDS[_op(m)]
        hi = year if hi is None else min(hi, year)
        rest = rest.replace(m.group(0), " ")
    decade: int | None = None
    if m := DECADE_RE.search(rest):
        decade = _decade_start(m)
    elif m := DECADE_WORD_RE.search(rest):
        decade = DECADE_WORDS[m.group(1).lower()]
    if decade is not None:
        rest = rest.replace(m.group(0), " ")
        start = max(decade, lo if lo is not None else decade)
        end = min(decade + 9, hi if hi is not None else decade + 9)
        if start <= end:
            lo, hi = start, end
    elif lo is None and hi is None and (m := EXACT_RE.search(rest)):
        lo = hi = int(m["year"])
        rest = rest.replace(m.group(0), " ")
    return QueryWords(" ".join(rest.split()), lo, hi)
