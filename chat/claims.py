"""What a text claims: the catalog titles it cites, and whether it may cite them.

A reason or intro written by an LLM may name only items it is allowed to (a card's evidence; for
the intro, the user's own history and what they asked for). Where the text says the user liked,
rated, watched or asked for something (a *claim*), every title in that stretch must be allowed,
whatever its length, spelling (fuzzy match over the whole catalog) or letters (the text is folded
first, see :mod:`chat.plaintext`); a capitalised name there that is no allowed title and no genre
is a claim that cannot be checked. Outside claims, any title of two words or more, and any
capitalised one-word title, counts as a mention. Hidden items and the user's dismissed ones are
never named. Internal labels (C3, H2, item ids), usernames, ratings by other people and
instructions addressed to the system are refused wherever they appear.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Count, Max
from rapidfuzz import fuzz, process

from catalog.models import Interaction, Item

from .plaintext import fold
from .titles import TitleIndex, normalise, title_key, without_article

MAX_TITLE_WORDS = 24
FUZZY_WORDS = 6
FUZZY_MIN_CHARS = 5
FUZZY_SCORE = 90.0

TOKEN_RE = re.compile(r"[^\W_]+|&")
WORD_RE = re.compile(r"[^\W_]+")
CLAIM_RE = re.compile(
    r"\b(?:(?:because|since|as|given(?:\s+that)?|if|now\s+that|seeing\s+as)\s+you"
    r"|you(?:'ve|'d|\s+have|\s+had|\s+did|\s+do|\s+already|\s+really|\s+also|\s+once|\s+just)*"
    r"\s+(?:liked|loved|enjoyed|adored|rated|watched|saw|seen|favou?rited|asked|requested"
    r"|mentioned|said|wanted|like|love|enjoy|adore|watch|rate|dig|dug|prefer|picked|chose|gave"
    r"|appreciated?|binged|raved|praised|named|cited)"
    r"|fans?\s+of|your\s+(?:history|favou?rites?|ratings?|likes?|watchlist|taste|love|liking|pick)"
    r"|based\s+on|reminds?\s+(?:you\s+)?of|in\s+the\s+(?:vein|spirit|style|mould|mold)\s+of"
    r"|similar\s+to|just\s+like|much\s+like|like|such\s+as|akin\s+to|echoes|after)\b[^.!?;:,—]*",
    re.I,
)
LABEL_RE = re.compile(r"\b[chp]\s?-?\d{1,4}\b|\b(?:item|id|label|candidate|pick)\s*#?\s*\d+\b|#\d+")
USER_REF_RE = re.compile(
    r"\b(?:ml|user|usr|member|account|profile)[\s_#-]*\d+\b|\busers?\s+named\b|\b(?:another|other)"
    r"\s+(?:user|member|viewer|person|people|account)s?\b|\bsomeone\s+else\b|\bother\s+people'?s?\b"
)
# someone other than the user said to like or rate something ("bob and ml_42 loved it"): a
# person's data is never part of an item's evidence, whoever the name belongs to
OTHER_PERSON_RE = re.compile(
    r"\b(?!(?:you|i|we|who|that|which|and|or)\b)[a-z0-9_.'-]*[a-z0-9_]\s+(?:and\s+\S+\s+)?"
    r"(?:both\s+|all\s+|also\s+|really\s+|just\s+|have\s+|has\s+)?"
    r"(?:rated|loved|liked|gave|enjoyed|adored|watched|recommended|favou?rited|raved|swore)\b"
)
RATING_RE = re.compile(
    r"\d+(?:[.,]\d+)?\s*(?:stars?|/\s*(?:5|10)|out\s+of\s+(?:5|10|five|ten))|★|☆"
    r"|\b(?:five|four|three|two|one)[\s-]stars?\b|\b(?:gave|rated)\s+(?:it|this|that)\b"
)
# words that address the system rather than describe a film, in the languages an LLM is most
# often told to switch to (folded: no accents, lower case)
INSTRUCTION_RE = re.compile(
    r"\b(?:ignor\w*|disregard\w*|overrid\w*|bypass\w*|jailbreak\w*|instruction\w*|prompt\w*"
    r"|guard|guards|guardrails?|system|admin\w*|developer|sudo|root\s+access|assistant|chatgpt|openai|gpt\W?\d*"
    r"|llm|language\s+model|as\s+an\s+ai|you\s+are\s+now|act\s+as|roleplay|do\s+anything\s+now"
    r"|new\s+rules?|print\s+the|output\s+the|repeat\s+after|must\s+show"
    r"|show\s+this|always\s+(?:show|recommend|include)|recommend\s+(?:this|item)|do\s+not\s+(?:filter"
    r"|check|remove)|tool\s*call|function\s*call|schema|json|token|api\s*key|password"
    r"|vergiss\w*|anweisung\w*|befehl\w*|ignorier\w*|systemaufforderung|regeln"
    r"|oubli\w*|consigne\w*|ignorez|ignorer|regles"
    r"|olvid\w*|instruccion\w*|ignora\w*|reglas|indicaciones"
    r"|dimentic\w*|istruzion\w*|regole|esquec\w*|instruc\w*|negeer\w*|instructie\w*"
    r"|zignoruj\w*|instrukcj\w*|talimat\w*|yoksay\w*|abaikan\w*|perintah)\b"
)
STOPWORDS = frozenset(
    "a an and are as at be but by for from has have he her his i in is it its me my no not of on"
    " or our she so that the their them they this to us was we were what when who why will with"
    " you your".split()
)


@dataclass
class Facts:
    """What the checks read once per turn: the catalog's titles, hidden items, the user's
    dismissed items, other people's usernames."""

    index: TitleIndex
    blocked: dict[str, set[int]]  # title key -> hidden or dismissed items with that title
    usernames: frozenset[str]  # folded, other than the user's own, without common words
    genre_words: frozenset[str]

    def blocked_ids(self) -> set[int]:
        return set().union(*self.blocked.values()) if self.blocked else set()


@dataclass
class Mention:
    ids: set[int]
    in_claim: bool
    words: str


@dataclass
class Verdict:
    problem: str | None = None  # a repair kind, None when the text may be shown
    mentions: list[Mention] = field(default_factory=list)


_users_lock = threading.Lock()
_users_cache: dict[tuple, frozenset[str]] = {}


def _usernames(index: TitleIndex) -> frozenset[str]:
    User = get_user_model()
    signature = tuple(User.objects.aggregate(n=Count("pk"), last=Max("pk")).values())
    with _users_lock:
        if signature in _users_cache:
            return _users_cache[signature]
    vocabulary = {word for key in index.keys for word in key.split()}
    names = frozenset(
        folded
        for name in User.objects.values_list("username", flat=True).iterator()
        if len(folded := fold(name)) >= 3 and folded not in vocabulary and folded not in STOPWORDS
    )
    with _users_lock:
        _users_cache.clear()
        _users_cache[signature] = names
    return names


def facts_read(*, user, index: TitleIndex) -> Facts:  # noqa: ANN001
    """Hidden items, this user's dismissed items and every username, read now."""
    blocked: dict[str, set[int]] = {}
    rows = Item.objects.filter(is_hidden=True).values_list("pk", "title")
    dismissed = Interaction.objects.filter(user=user, kind=Interaction.Kind.DISMISS)
    rows = list(rows) + list(dismissed.values_list("item_id", "item__title"))
    for pk, title in rows:
        if key := title_key(title):
            blocked.setdefault(key, set()).add(pk)
    own = fold(user.get_username())
    genre_words = frozenset(w for g in index.genres for w in normalise(g).split())
    return Facts(index, blocked, _usernames(index) - {own}, genre_words)


@dataclass
class _Token:
    key: str  # folded, as the title index writes words
    start: int
    capital: bool  # capitalised and not the first word of a sentence
    in_claim: bool


def _tokens(text: str) -> list[_Token]:
    claims = [(m.start(), m.end()) for m in CLAIM_RE.finditer(text)]
    out: list[_Token] = []
    for m in TOKEN_RE.finditer(text):
        word = m.group(0)
        key = "and" if word == "&" else normalise(fold(word))
        if not key:
            continue
        before = text[: m.start()].rstrip()
        initial = not before or before[-1] in '.!?:;"“(' or before.endswith("—")
        prev = text[m.start() - 1 : m.start()]
        quoted = prev in {'"', "“", "‘", "«", "„"} or (
            prev == "'" and not text[max(0, m.start() - 2) : m.start() - 1].isalnum()
        )
        capital = (word[:1].isupper() and not initial and word != "I") or quoted
        in_claim = any(a <= m.start() < b for a, b in claims)
        for part in key.split():
            out.append(_Token(part, m.start(), capital, in_claim))
    return out


def _lookup(key: str, facts: Facts) -> set[int]:
    ids = set(facts.index.exact.get(key, ()))
    return ids | facts.blocked.get(key, set())


def mentions(text: str, facts: Facts) -> tuple[list[Mention], list[str]]:
    """The titles ``text`` names (longest match first) and the capitalised words of its claims
    that name no title."""
    tokens = _tokens(text)
    found: list[Mention] = []
    used = [False] * len(tokens)
    for i in range(len(tokens)):
        if used[i]:
            continue
        for size in range(min(MAX_TITLE_WORDS, len(tokens) - i), 0, -1):
            span = tokens[i : i + size]
            if any(used[i : i + size]):
                continue
            key = without_article(" ".join(t.key for t in span))
            ids = _lookup(key, facts)
            first = span[-len(key.split())] if key else span[0]
            one_word_ok = first.in_claim or first.capital
            if ids and (len(key.split()) > 1 and len(key) >= 5 or one_word_ok and len(key) >= 2):
                found.append(Mention(ids, any(t.in_claim for t in span), key))
                used[i : i + size] = [True] * size
                break
    # misspelt titles, where a person would read a claim: fuzzy over every catalog title
    for i, tok in enumerate(tokens):
        if used[i] or not tok.in_claim or not (tok.capital or i == 0 or not tokens[i - 1].in_claim):
            continue
        for size in range(min(FUZZY_WORDS, len(tokens) - i), 0, -1):
            if any(used[i : i + size]) or not all(t.in_claim for t in tokens[i : i + size]):
                continue
            key = without_article(" ".join(t.key for t in tokens[i : i + size]))
            if len(key) < FUZZY_MIN_CHARS:
                continue
            hit = process.extractOne(
                key, facts.index.keys, scorer=fuzz.ratio, score_cutoff=FUZZY_SCORE
            )
            blocked = [k for k in facts.blocked if fuzz.ratio(key, k) >= FUZZY_SCORE]
            if hit or blocked:
                ids = set(facts.index.exact.get(hit[0], ())) if hit else set()
                for k in blocked:
                    ids |= facts.blocked[k]
                found.append(Mention(ids, True, key))
                used[i : i + size] = [True] * size
                break
    unknown = [
        t.key
        for i, t in enumerate(tokens)
        if t.in_claim
        and t.capital
        and not used[i]
        and t.key not in facts.genre_words
        and t.key not in STOPWORDS
    ]
    return found, unknown


def check(
    text: str,
    folded: str,
    facts: Facts,
    *,
    claim_allowed: set[int],
    mention_allowed: set[int],
) -> Verdict:
    """Whether an already plain ``text`` (``folded``: its folded form) may be shown.

    ``claim_allowed``: items it may say the user liked or asked for; ``mention_allowed``: items
    it may name otherwise (e.g. the card's own item)."""
    if LABEL_RE.search(folded):
        return Verdict("internal_label")
    if USER_REF_RE.search(folded) or set(TOKEN_RE.findall(folded)) & facts.usernames:
        return Verdict("other_users")
    if RATING_RE.search(folded) or OTHER_PERSON_RE.search(folded):
        return Verdict("other_users")
    if INSTRUCTION_RE.search(folded):
        return Verdict("instruction")
    found, unknown = mentions(text, facts)
    blocked = facts.blocked_ids()
    for m in found:
        allowed = claim_allowed if m.in_claim else claim_allowed | mention_allowed
        if m.ids & allowed:
            continue
        if m.ids & blocked:
            return Verdict("blocked_citation", found)
        return Verdict("foreign_citation", found)
    if unknown:
        return Verdict("unverifiable_claim", found)
    return Verdict(None, found)


def user_words(texts: list[str]) -> set[str]:
    """The folded words of the user's own messages: what an echo may repeat."""
    return {w for text in texts for w in WORD_RE.findall(fold(text))}


def user_words_only(text: str, user_text: str) -> str:
    """The words of ``text`` (an LLM's tool argument) that the user wrote themselves: the LLM
    may choose among the user's words, never add its own."""
    own = user_words([user_text])
    return " ".join(w for w in WORD_RE.findall(fold(text)) if w in own)
