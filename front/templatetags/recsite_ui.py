"""Small presentation helpers: generated covers, dictionary look-ups in templates."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from catalog.selectors import ItemState, user_item_states
from catalog.titles import display_title

register = template.Library()

# A fixed hue per MovieLens genre, so a genre always looks the same; others hash to a hue.
GENRE_HUES: dict[str, int] = {
    "Action": 8,
    "Adventure": 28,
    "Animation": 45,
    "Children": 95,
    "Comedy": 52,
    "Crime": 350,
    "Documentary": 170,
    "Drama": 262,
    "Fantasy": 290,
    "Film-Noir": 220,
    "Horror": 0,
    "IMAX": 195,
    "Musical": 320,
    "Mystery": 240,
    "Romance": 335,
    "Sci-Fi": 200,
    "Thriller": 15,
    "War": 80,
    "Western": 35,
}


def genre_hue(genre: str) -> int:
    if genre in GENRE_HUES:
        return GENRE_HUES[genre]
    return zlib.crc32(genre.encode()) % 360 if genre else 215


@register.simple_tag
def cover(item: Any, size: str = "") -> str:
    """A generated cover: the title's initial on a gradient of the genres' hues.
    Fixed aspect ratio (CSS), so nothing moves while a page loads. Decorative: the title is in
    the text beside it, so the cover does not repeat it, nor name one genre as if it were the
    item's kind (MovieLens lists genres alphabetically)."""
    genres = [g for g in (getattr(item, "genres", None) or []) if g != "(no genres listed)"]
    hue = genre_hue(genres[0] if genres else "")
    hue2 = (genre_hue(genres[1]) if len(genres) > 1 else hue + 40) % 360
    shown = display_title(getattr(item, "title", "") or "")
    initial = next((c for c in shown.removeprefix("The ") if c.isalnum()), "·")
    return format_html(
        '<div class="cover{}" style="--h1: {}; --h2: {}" aria-hidden="true">'
        '<span class="cover-initial">{}</span></div>',
        f" cover-{size}" if size else "",
        hue,
        hue2,
        initial.upper(),
    )


@register.filter(name="display_title")
def display_title_filter(title: str) -> str:
    """A stored title as a person reads it ("Matrix, The" -> "The Matrix")."""
    return display_title(title or "")


@register.filter
def get_item(mapping: dict | None, key: Any) -> Any:
    return (mapping or {}).get(key)


@register.filter
def percent(value: float | None) -> int:
    try:
        return max(0, min(100, round(float(value or 0) * 100)))
    except (TypeError, ValueError):
        return 0


@lru_cache(maxsize=16)
def _rating_options_html(current: float | None) -> str:
    # the best rating first: a person picking from the list usually means a high one
    unset = "" if current is not None else '<option value="" selected>Rate…</option>'
    return unset + "".join(
        f'<option value="{v / 2:g}"{" selected" if current == v / 2 else ""}>{v / 2:g} ★</option>'
        for v in range(10, 0, -1)
    )


@register.simple_tag
def rating_options(current: float | None) -> str:
    """The <option>s 0.5 .. 5 of a rating <select>, the current value selected (numbers only)."""
    return mark_safe(_rating_options_html(float(current) if current is not None else None))


@dataclass(frozen=True)
class CardItem:
    """A stored card's item (a dict in a saved chat answer) as the item templates read it."""

    pk: int
    title: str
    year: int | None

    @property
    def display_title(self) -> str:
        return display_title(self.title)


@register.simple_tag
def card_item(data: dict) -> CardItem:
    """``{% card_item r.item as item %}``: a chat card's item for the shared item controls."""
    return CardItem(int(data["id"]), str(data.get("title") or ""), data.get("year"))


@register.simple_tag(takes_context=True)
def item_state(context: template.Context, item_id: int) -> ItemState:
    """``{% item_state item.pk as state %}``: what the page's user said of one item."""
    request = context.get("request")
    user = getattr(request, "user", None)
    return user_item_states(user=user, item_ids=[item_id])[item_id]
