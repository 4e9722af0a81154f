"""What the simulated users say: request templates filled from their held-out favourites.

Each simulated user holds one 3-turn conversation, alternating between two scripts:

* A: "something like <a liked item> but <genre of a favourite, as a wish>" -> "not <genre>" ->
  "why did you suggest <a shown item>?"
* B: "a <decade> <genre> film I haven't seen" -> "more like the second one" ->
  "why did you suggest <a shown item>?"

Titles are written as a person writes them ("The Terminator", the year only when two items
share the title).
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog.models import Item

from ..titles import TitleIndex, normalise, title_bare, title_resolve, without_article

# a genre as a soft wish after "but" (how people ask for "more of it")
WISHES: dict[str, str] = {
    "Action": "with more action",
    "Adventure": "more adventurous",
    "Animation": "animated",
    "Children": "more family-friendly",
    "Comedy": "funnier",
    "Crime": "more about crime",
    "Drama": "more dramatic",
    "Fantasy": "more magical",
    "Horror": "scarier",
    "Musical": "with more music",
    "Mystery": "more mysterious",
    "Romance": "more romantic",
    "Sci-Fi": "more futuristic",
    "Thriller": "more suspenseful",
    "War": "more about war",
    "Western": "more of a western",
}
# a genre as a noun ("a 90s <noun> film", "not <noun>")
NOUNS: dict[str, str] = {
    "Action": "action",
    "Adventure": "adventure",
    "Animation": "animation",
    "Children": "family",
    "Comedy": "comedy",
    "Crime": "crime",
    "Documentary": "documentary",
    "Drama": "drama",
    "Fantasy": "fantasy",
    "Film-Noir": "noir",
    "Horror": "horror",
    "Musical": "musical",
    "Mystery": "mystery",
    "Romance": "romance",
    "Sci-Fi": "sci-fi",
    "Thriller": "thriller",
    "War": "war",
    "Western": "western",
}

TURN_TYPES = ("like_but", "negation", "decade_genre", "followup", "why")
SCRIPTS = (("like_but", "negation", "why"), ("decade_genre", "followup", "why"))


@dataclass
class Turn:
    kind: str
    text: str
    genre: str | None = None  # like_but: the wished genre; negation / decade_genre: the genre
    year_min: int | None = None
    year_max: int | None = None
    item_id: int | None = None  # like_but: the reference; why: the item asked about


def written_title(item: Item, index: TitleIndex) -> str:
    """'Terminator, The' -> 'The Terminator'; with the year when the title is not unique."""
    title = title_bare(item.title)
    key = without_article(normalise(title))
    if len(index.exact.get(key, [])) > 1 and item.year:
        title = f"{title} ({item.year})"
    return title


def nameable(item: Item, index: TitleIndex) -> bool:
    """Whether the written title resolves back to this item (a person could name it)."""
    return title_resolve(written_title(item, index), index=index) == item.pk


def decade_words(year: int) -> tuple[str, int, int]:
    start = year - year % 10
    words = f"{start % 100:02d}s" if 1930 <= start <= 1990 else f"{start}s"
    return words, start, start + 9


def why_text(item: Item, index: TitleIndex) -> str:
    return f"why did you suggest {written_title(item, index)}?"
