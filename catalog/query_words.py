"""Year words in a search query: "90s", "1990s", "'80s", "after 2000", "before 1980",
"1990-1995", "from 1999". The catalog search turns them into year bounds and searches the rest,
so "romantic comedy 90s" means romantic comedies of 1990-1999.

A bare year ("1984", "2001") stays in the text: it is also a title.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_YEAR = r"(1[89]\d\d|20\d\d)"
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
RANGE_RE = re.compile(rf"\b(?:between\s+)?{_YEAR}\s*(?:-|–|to|and)\s*{_YEAR}\b", re.I)
AFTER_RE = re.compile(rf"\b(?P<op>after|since|newer than|later than)\s+{_YEAR}\b", re.I)
BEFORE_RE = re.compile(rf"\b(?P<op>before|older than|until|earlier than)\s+{_YEAR}\b", re.I)
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


def query_words(query: str) -> QueryWords:
    """``query`` split into the words to search and the year bounds its year words ask for."""
    rest = f" {query or ''} "
    lo: int | None = None
    hi: int | None = None
    if m := RANGE_RE.search(rest):
        lo, hi = sorted((int(m.group(1)), int(m.group(2))))
        rest = rest.replace(m.group(0), " ")
    if m := AFTER_RE.search(rest):
        lo = int(m.group(2)) + (m["op"].lower() != "since")
        rest = rest.replace(m.group(0), " ")
    if m := BEFORE_RE.search(rest):
        hi = int(m.group(2)) - (m["op"].lower() != "until")
        rest = rest.replace(m.group(0), " ")
    if lo is None and hi is None:
        if m := DECADE_RE.search(rest):
            lo = _decade_start(m)
        elif m := DECADE_WORD_RE.search(rest):
            lo = DECADE_WORDS[m.group(1).lower()]
        if lo is not None:
            hi = lo + 9
            rest = rest.replace(m.group(0), " ")
        elif m := EXACT_RE.search(rest):
            lo = hi = int(m.group(1))
            rest = rest.replace(m.group(0), " ")
    return QueryWords(" ".join(rest.split()), lo, hi)
