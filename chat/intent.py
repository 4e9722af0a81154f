"""Understanding a turn: the Intent dataclass, the built-in parser, and the conversation state.

The built-in parser needs no LLM: regular expressions for genres (with synonyms), negations,
decades and year bounds (the catalog search's own year words, ``catalog.query_words``), "like
<title>" references resolved fuzzily against the catalog, ordinal follow-ups ("the second one"),
questions ("why did you suggest Heat?") and feedback ("I loved Alien", "no more horror"). An
LLM's tool calls are validated into the same Intent.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from catalog.query_words import query_words

from .titles import TitleIndex, title_index, title_resolve
from .vocabulary import ALL_GENRE_WORDS, GENRE_ADJECTIVES, GENRE_NOUNS, MORE_GENRE_WORDS

_MORE_ALT = "|".join(sorted((re.escape(w) for w in MORE_GENRE_WORDS), key=len, reverse=True))
MORE_GENRE_RE = re.compile(
    rf"\bmore\s+(?:about\s+|of\s+an?\s+)?(?P<genre>{_MORE_ALT})(?![\w-])", re.I
)
_GENRE_ALT = "|".join(sorted((re.escape(w) for w in ALL_GENRE_WORDS), key=len, reverse=True))
GENRE_RE = re.compile(rf"(?<![\w-])({_GENRE_ALT})(?![\w-])", re.I)
OTHER_WISH_RE = re.compile(
    r"\bbut\s+(?:a\s+(?:bit|little|lot)\s+|much\s+|way\s+|somewhat\s+)?"
    r"(?P<wish>more\s+[a-z][a-z-]{2,}|less\s+[a-z][a-z-]{2,}|[a-z][a-z-]{2,}(?:er|ier))\b",
    re.I,
)
NOT_WISHES = {"better", "never", "ever", "either", "rather", "whatever", "over", "under", "later"}
NEGATED_GENRE_RE = re.compile(
    rf"\b(?P<neg>not|no|without|nothing|avoid|except|never|hate|dislike|don'?t want|no more)"
    rf"\s+(?:more\s+|any\s+|too\s+|so\s+|really\s+|very\s+)?(?P<genre>{_GENRE_ALT})(?![\w-])",
    re.I,
)
STANDING_RE = re.compile(
    r"\b(no more|never|stop (?:showing|suggesting)|i hate|i don'?t like)\b", re.I
)
_STOP = r"(?=\s+(?:but|and|with|from|not|though|only|except|without|that|which|in the|please)\b|[,.;!?]|$)"
LIKE_RE = re.compile(
    rf"(?<!would )(?<!'d )\b(?:like|similar to|in the vein of|reminds? me of|along the lines of)\s+(?P<title>.+?){_STOP}",
    re.I,
)
QUESTION_RE = re.compile(
    r"\bwhy\b.*?\b(?:suggest(?:ed)?|recommend(?:ed)?|pick(?:ed)?|chose|choose|show(?:ed)?|include[d]?)\s+(?P<title>.+?)\s*\??\s*$"
    r"|\b(?:tell me (?:more )?about|what is|what's)\s+(?P<title2>.+?)\s*(?:about)?\s*\??\s*$",
    re.I,
)
FEEDBACK_RE = re.compile(
    rf"\bi\s+(?:really\s+|absolutely\s+|totally\s+|just\s+)?(?P<verb>loved|love|liked|enjoyed|adored|hated|hate|disliked|didn'?t like|did not like|can'?t stand|couldn'?t stand|have seen|'ve seen|already saw|already watched|saw|watched)\s+(?P<title>.+?){_STOP}",
    re.I,
)
POSITIVE_VERBS = {"loved", "love", "liked", "enjoyed", "adored"}
SEEN_VERBS = {"have seen", "'ve seen", "already saw", "already watched", "saw", "watched"}
ORDINALS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
    "fifth": 5, "5th": 5, "sixth": 6, "6th": 6, "last": -1,
}  # fmt: skip
ORDINAL_RE = re.compile(
    r"\b(?:the\s+)?(?P<ord>first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th|sixth|6th|last)(?:\s+one|\s+(?:movie|film|item|suggestion|pick))?\b"
    r"|(?:#|number\s+|no\.\s*)(?P<num>\d)\b",
    re.I,
)
MORE_RE = re.compile(r"\b(more|other|others|else|different|another|again)\b", re.I)
RESET_RE = re.compile(r"\b(start over|reset|forget (?:that|it|everything)|new search)\b", re.I)
WORD_RE = re.compile(r"[a-z][a-z'-]{2,}", re.I)
QUERY_STOPWORDS = set(
    """a an the and or but with without from for of to in on at by about like similar something
    anything movie movies film films show shows me i i'm im you your please some any want would
    could can need looking look find recommend suggest give more less than not no nothing that
    this those these one ones it its is are was were be been haven't havent have has had seen see
    watch watched saw good great nice best really very just also too so much many what which who
    why how when where there here them they my mine our we us lot bit kind sort type something
    else other another different again funnier scarier lighter darker newer older recent old new
    only still though maybe perhaps tonight today weekend""".split()
)


@dataclass
class Intent:
    """What one turn asks for. Item ids are resolved against the catalog; genres are canonical."""

    genres: list[str] = field(default_factory=list)
    exclude_genres: list[str] = field(default_factory=list)
    prefer_genres: list[str] = field(default_factory=list)  # soft wishes ("funnier")
    wishes: list[str] = field(default_factory=list)  # the wishes as written ("darker", "cozier")
    year_min: int | None = None
    year_max: int | None = None
    references: list[int] = field(default_factory=list)  # "like Alien"
    followup_ranks: list[int] = field(default_factory=list)  # "the second one" (1-based, -1 last)
    question_item: int | None = None  # "why did you suggest Heat?"
    question_rank: int | None = None  # "why did you suggest the second one?"
    feedback: list[tuple[int, str]] = field(default_factory=list)  # (item, like|dislike|seen)
    standing: list[tuple[str, str]] = field(default_factory=list)  # ("exclude_genre", "Horror")
    query: str = ""  # soft free text for the text search
    more: bool = False  # "more", "something else": leave out what was shown
    reset: bool = False
    unresolved: list[str] = field(default_factory=list)  # titles not found in the catalog
    parser: str = "builtin"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Intent:
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["feedback"] = [tuple(x) for x in kwargs.get("feedback", [])]
        kwargs["standing"] = [tuple(x) for x in kwargs.get("standing", [])]
        return cls(**kwargs)


def _known(genre: str, index: TitleIndex) -> bool:
    return not index.genres or genre in index.genres


def intent_parse(text: str, *, index: TitleIndex | None = None) -> Intent:
    """The built-in parser: everything it can get from the text without an LLM."""
    index = index or title_index()
    intent = Intent()
    rest = " " + text.strip() + " "

    if RESET_RE.search(rest):
        intent.reset = True

    # questions about one item
    q = QUESTION_RE.search(text.strip())
    if q:
        title = (q["title"] or q["title2"] or "").strip(" ?\"'“”")
        ordinal = ORDINAL_RE.fullmatch(title.strip()) if title else None
        if ordinal:
            intent.question_rank = _ordinal_rank(ordinal)
        elif title:
            item_id = title_resolve(title, index=index)
            if item_id is not None:
                intent.question_item = item_id
            else:
                intent.unresolved.append(title)
        rest = rest.replace(q.group(0), " ")

    # feedback about items ("I loved Alien")
    for m in FEEDBACK_RE.finditer(rest):
        title = m["title"].strip(" \"'“”")
        item_id = title_resolve(title, index=index)
        verb = m["verb"].lower().replace("’", "'")
        if item_id is None:
            if not GENRE_RE.fullmatch(title):
                intent.unresolved.append(title)
            continue
        kind = "like" if verb in POSITIVE_VERBS else "seen" if verb in SEEN_VERBS else "dislike"
        intent.feedback.append((item_id, kind))
        rest = rest.replace(m.group(0), " ")

    # references ("like Alien")
    for m in LIKE_RE.finditer(rest):
        title = m["title"].strip(" \"'“”")
        ordinal = ORDINAL_RE.fullmatch(title)
        if ordinal:
            intent.followup_ranks.append(_ordinal_rank(ordinal))
            rest = rest.replace(m.group(0), " ")
            continue
        item_id = title_resolve(title, index=index)
        if item_id is not None:
            if item_id not in intent.references:
                intent.references.append(item_id)
            rest = rest.replace(m.group(0), " ")
        elif not GENRE_RE.search(title) and len(title) >= 3:
            intent.unresolved.append(title)
    for m in ORDINAL_RE.finditer(rest):
        rank = _ordinal_rank(m)
        if rank not in intent.followup_ranks:
            intent.followup_ranks.append(rank)
        rest = rest.replace(m.group(0), " ")

    # negated genres, then the rest
    for m in NEGATED_GENRE_RE.finditer(rest):
        for genre in ALL_GENRE_WORDS[m["genre"].lower()]:
            if _known(genre, index) and genre not in intent.exclude_genres:
                intent.exclude_genres.append(genre)
                if STANDING_RE.search(m.group(0)) or m["neg"].lower() in {"never", "no more"}:
                    intent.standing.append(("exclude_genre", genre))
    rest = NEGATED_GENRE_RE.sub(" ", rest)
    for m in MORE_GENRE_RE.finditer(rest):
        genre = MORE_GENRE_WORDS[m["genre"].lower()]
        intent.wishes.append(m.group(0).lower())
        if _known(genre, index) and genre not in intent.exclude_genres + intent.prefer_genres:
            intent.prefer_genres.append(genre)
    rest = MORE_GENRE_RE.sub(" ", rest)
    for m in GENRE_RE.finditer(rest):
        word = m.group(1).lower()
        target = intent.genres if word in GENRE_NOUNS else intent.prefer_genres
        if word in GENRE_ADJECTIVES:
            intent.wishes.append(word)
        for genre in ALL_GENRE_WORDS[word]:
            if _known(genre, index) and genre not in intent.exclude_genres + target:
                target.append(genre)
    rest = GENRE_RE.sub(" ", rest)
    # a wish outside the genre vocabulary ("but cozier", "but more cerebral"): kept as written,
    # for the text embeddings to weigh (and as query words for the text search)
    for m in OTHER_WISH_RE.finditer(rest):
        if m["wish"].lower() not in QUERY_STOPWORDS | NOT_WISHES:
            intent.wishes.append(m["wish"].lower())
    intent.wishes = list(dict.fromkeys(intent.wishes))

    # years: the catalog search's year words ("90s", "not older than 1995", "the nineties")
    years = query_words(rest)
    intent.year_min, intent.year_max = years.year_min, years.year_max
    rest = years.text

    if MORE_RE.search(text) and not intent.references:
        intent.more = True
    words = [w.lower() for w in WORD_RE.findall(rest)]
    intent.query = " ".join(w for w in words if w not in QUERY_STOPWORDS and not w.isdigit())[:200]
    return intent


def _ordinal_rank(m: re.Match[str]) -> int:
    if m["num"]:
        return int(m["num"])
    return ORDINALS[m["ord"].lower()]


# --- the conversation's state: constraints carried from turn to turn ------------------------------


@dataclass
class State:
    genres: list[str] = field(default_factory=list)
    exclude_genres: list[str] = field(default_factory=list)
    prefer_genres: list[str] = field(default_factory=list)
    wishes: list[str] = field(default_factory=list)
    year_min: int | None = None
    year_max: int | None = None
    references: list[int] = field(default_factory=list)
    query: str = ""
    shown: list[int] = field(default_factory=list)  # every item this conversation has shown
    last_results: list[int] = field(default_factory=list)  # the previous answer, in rank order
    seen: list[int] = field(default_factory=list)  # "I've seen X" (kept out of this conversation)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> State:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})


def state_merge(state: State, intent: Intent) -> State:
    """Refinement: a new turn overrides what it states and keeps the rest of the conversation's
    constraints. New reference items (or a reset) start a new topic."""
    if intent.reset:
        state = State(shown=state.shown, last_results=state.last_results, seen=state.seen)
    new = State.from_dict(state.as_dict())
    followups = [
        state.last_results[r - 1 if r > 0 else len(state.last_results) - 1]
        for r in intent.followup_ranks
        if state.last_results and -1 <= r <= len(state.last_results) and r != 0
    ]
    references = list(dict.fromkeys(intent.references + followups))
    if references:
        new.references = references
        new.query = intent.query
        new.genres = list(intent.genres)
        new.prefer_genres = list(intent.prefer_genres)
        new.wishes = list(intent.wishes)
    else:
        if intent.query:
            new.query = intent.query
        if intent.genres:
            new.genres = list(intent.genres)
        if intent.prefer_genres:
            new.prefer_genres = list(dict.fromkeys(state.prefer_genres + intent.prefer_genres))
        if intent.wishes:
            new.wishes = list(dict.fromkeys(state.wishes + intent.wishes))[-6:]
    new.exclude_genres = list(dict.fromkeys(new.exclude_genres + intent.exclude_genres))
    new.genres = [g for g in new.genres if g not in new.exclude_genres]
    new.prefer_genres = [g for g in new.prefer_genres if g not in new.exclude_genres]
    if intent.year_min is not None or intent.year_max is not None:
        new.year_min, new.year_max = intent.year_min, intent.year_max
    new.seen = list(dict.fromkeys(state.seen + [i for i, k in intent.feedback if k == "seen"]))
    return new
