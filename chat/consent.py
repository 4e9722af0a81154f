"""Writes asked for by the user: a tool call that would change the user's profile (feedback on
an item, a standing "no more X") is carried out only when the user's own message says so.

The LLM reads the message to find what the user asked; it cannot add a wish the message does
not state. A like needs the item named and a liking verb in the message; a standing exclusion
needs the genre named and a standing phrase ("no more", "never", "stop showing"...).
"""

from __future__ import annotations

import re

from .claims import Facts, mentions
from .plaintext import fold
from .titles import normalise, title_key
from .vocabulary import ALL_GENRE_WORDS

SENTIMENT_RE = {
    "like": re.compile(
        r"\b(?:i|i'?ve|i\s+have|we)\s+(?:\w+\s+)?(?:lov(?:e|ed)|lik(?:e|ed)|enjoy(?:ed)?|ador(?:e|ed))\b"
        r"|\b(?:loved|enjoyed|adored)\b|\bfavou?rite\b"
        r"|\b(?:was|is)\s+(?:so\s+|really\s+)?(?:amazing|great|brilliant|awesome|fantastic|a\s+masterpiece)\b"
    ),
    "dislike": re.compile(
        r"\b(?:hat(?:e|ed)|dislik(?:e|ed)|didn'?t\s+like|did\s+not\s+like|don'?t\s+like|can'?t\s+stand"
        r"|couldn'?t\s+stand|awful|terrible|boring|worst)\b"
    ),
    "seen": re.compile(
        r"\b(?:i'?ve\s+seen|i\s+have\s+seen|(?:i\s+)?(?:already\s+)?(?:saw|watched))\b"
    ),
}
STANDING_RE = re.compile(
    r"\b(?:no\s+more|never|stop\s+(?:showing|suggesting|recommending)|don'?t\s+(?:ever\s+)?"
    r"(?:show|suggest|recommend)|any\s?more|from\s+now\s+on|ever\s+again|in\s+(?:the\s+)?future"
    r"|always\s+(?:skip|exclude|leave\s+out)|i\s+(?:hate|can'?t\s+stand|don'?t\s+like))\b"
)
NEGATION_RE = re.compile(r"\b(?:not|n't|no|never|don'?t|didn'?t|isn'?t|wasn'?t)\b")


def feedback_asked(*, text: str, item_id: int, sentiment: str, facts: Facts) -> bool:
    """The message names this item and says the user liked / disliked / saw it."""
    folded = fold(text)
    pattern = SENTIMENT_RE.get(sentiment)
    if pattern is None or not pattern.search(folded):
        return False
    if sentiment == "like" and (
        SENTIMENT_RE["dislike"].search(folded)
        or all(
            NEGATION_RE.search(folded[max(0, m.start() - 12) : m.start()])
            for m in SENTIMENT_RE["like"].finditer(folded)
        )
    ):
        return False
    found, _ = mentions(text, facts)
    named = any(item_id in m.ids for m in found)
    if not named:  # a one-word title written in lower case is still the user's own word
        key = title_key(facts.index.titles.get(item_id, ""))
        named = bool(key) and re.search(rf"\b{re.escape(key)}\b", normalise(folded)) is not None
    return named


def standing_asked(*, text: str, genre: str) -> bool:
    """The message asks, for the future, to leave this genre out."""
    folded = fold(text)
    if not STANDING_RE.search(folded):
        return False
    words = {w for w, g in ALL_GENRE_WORDS.items() if genre in g} | {genre.lower()}
    return any(re.search(rf"\b{re.escape(fold(w))}(?:s|es)?\b", folded) for w in words)
