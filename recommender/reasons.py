"""The one-line reason a person reads at a glance, built only from a recommendation's evidence."""

from __future__ import annotations

from .types import Recommendation


def _join(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def reason_for(rec: Recommendation) -> str:
    """'Because you liked Alien and Aliens' / 'Sci-Fi, like 6 of your favourites' / ...

    Every name and number in the sentence comes from ``rec.evidence``; nothing else is cited.
    """
    curated = [e for e in rec.evidence if e.kind == "curated"]
    history = [e for e in rec.evidence if e.kind == "history_item"]
    attributes = [e for e in rec.evidence if e.kind == "shared_attribute"]
    genres = [e for e in attributes if e.label.startswith("genre: ")]
    queries = [e for e in rec.evidence if e.kind == "query_match"]
    users = [e for e in rec.evidence if e.kind == "similar_users"]
    parts: list[str] = []
    if curated:
        parts.append(curated[0].label)
    if queries:
        parts.append(f"Matches “{queries[0].label}”")
    if history and rec.source == "semantic":  # a cold item, matched on its text
        parts.append("Similar to " + _join([e.label for e in history[:2]]) + " in your history")
    elif history:
        parts.append("Because you liked " + _join([e.label for e in history[:2]]))
    elif genres and genres[0].weight >= 1:
        genre = genres[0].label.removeprefix("genre: ")
        count = int(genres[0].weight)
        favourites = "favourite" if count == 1 else "favourites"
        parts.append(f"{genre}, like {count} of your {favourites}")
    elif attributes:
        parts.append(attributes[0].label.split(": ", 1)[-1].capitalize())
    if users and not history:
        parts.append(users[0].label)
    if not parts:
        return "Popular on recsite"
    return " · ".join(parts)
