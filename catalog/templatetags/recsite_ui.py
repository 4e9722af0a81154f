"""Small presentation helpers: generated covers, dictionary look-ups in templates."""

from __future__ import annotations

import zlib
from typing import Any

from django import template

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


@register.inclusion_tag("catalog/partials/cover.html")
def cover(item: Any, size: str = "") -> dict[str, Any]:
    genres = list(getattr(item, "genres", None) or [])
    primary = genres[0] if genres and genres[0] != "(no genres listed)" else ""
    return {
        "item": item,
        "hue": genre_hue(primary),
        "hue2": (genre_hue(genres[1]) if len(genres) > 1 else genre_hue(primary) + 40) % 360,
        "genre": primary,
        "size": size,
    }


@register.filter
def get_item(mapping: dict | None, key: Any) -> Any:
    return (mapping or {}).get(key)


@register.filter
def percent(value: float | None) -> int:
    try:
        return max(0, min(100, round(float(value or 0) * 100)))
    except (TypeError, ValueError):
        return 0


@register.simple_tag
def rating_values() -> list[float]:
    return [v / 2 for v in range(1, 11)]
