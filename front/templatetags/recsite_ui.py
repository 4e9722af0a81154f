"""Small presentation helpers: generated covers, dictionary look-ups in templates."""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

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
    """A generated cover: title, year and genre on a gradient of the genres' hues. Fixed aspect
    ratio (CSS), so nothing moves while a page loads. Decorative: the title is also in text."""
    genres = list(getattr(item, "genres", None) or [])
    primary = genres[0] if genres and genres[0] != "(no genres listed)" else ""
    hue = genre_hue(primary)
    hue2 = (genre_hue(genres[1]) if len(genres) > 1 else hue + 40) % 360
    return format_html(
        '<div class="cover{}" style="--h1: {}; --h2: {}" aria-hidden="true">'
        '<span class="cover-genre">{}</span><span class="cover-title">{}</span>'
        '<span class="cover-year">{}</span></div>',
        f" cover-{size}" if size else "",
        hue,
        hue2,
        primary or "Film",
        item.title,
        item.year or "",
    )


@lru_cache(maxsize=32)
def _stars_html(rating: float | None) -> str:
    return "".join(
        f'<button type="submit" name="value" value="{v}" class="star{" on" if rating and rating >= v else ""}"'
        f' aria-label="Rate {v} out of 5" aria-pressed="{"true" if rating == v else "false"}">★</button>'
        for v in range(1, 6)
    )


@register.simple_tag
def star_buttons(item: Any, state: Any) -> str:
    """Five submit buttons rating the item 1-5 (the form around them is in the template).
    Only numbers go into this HTML, so it is built once per rating value."""
    rating = getattr(state, "rating", None)
    return mark_safe(_stars_html(float(rating) if rating is not None else None))


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
    return "".join(
        f'<option value="{v / 2:g}"{" selected" if current == v / 2 else ""}>{v / 2:g}</option>'
        for v in range(1, 11)
    )


@register.simple_tag
def rating_options(current: float | None) -> str:
    """The <option>s 0.5 .. 5 of a rating <select>, the current value selected (numbers only)."""
    return mark_safe(_rating_options_html(float(current) if current is not None else None))
