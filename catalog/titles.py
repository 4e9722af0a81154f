"""Titles as a person reads them.

MovieLens stores a leading article after the title ("Matrix, The", "Cité des enfants perdus, La
(City of Lost Children, The)") so that lists sort by the first significant word. A person expects
"The Matrix": every page, reason, chat card and API field a person sees uses ``display_title``.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Articles MovieLens moves to the end (English, French, Spanish, Italian, German, Portuguese...).
ARTICLES = (
    "The|A|An|La|Le|Les|L'|Il|Lo|I|Gli|El|Los|Las|Der|Die|Das|Den|Det|De|Het|Un|Una|Une|O|Os|As"
)
_MOVED = re.compile(rf"^(?P<rest>.+?), (?P<article>{ARTICLES})$")
_ALTERNATIVE = re.compile(r"^(?P<main>.+?)\s+\((?P<alt>[^()]+)\)$")


def _article_first(title: str) -> str:
    m = _MOVED.match(title)
    if not m:
        return title
    joiner = "" if m["article"].endswith("'") else " "
    return f"{m['article']}{joiner}{m['rest']}"


@lru_cache(maxsize=65536)
def display_title(title: str) -> str:
    """``title`` with a trailing article put back in front, in the title and in an alternative
    title in brackets: "Matrix, The" -> "The Matrix"; "Cité des enfants perdus, La (City of Lost
    Children, The)" -> "La Cité des enfants perdus (The City of Lost Children)"."""
    title = (title or "").strip()
    m = _ALTERNATIVE.match(title)
    if m:
        return f"{_article_first(m['main'])} ({_article_first(m['alt'])})"
    return _article_first(title)


def display_label(title: str, year: int | None) -> str:
    """The display title with its year, as lists and reasons show an item: "The Matrix (1999)"."""
    shown = display_title(title)
    return f"{shown} ({year})" if year else shown
