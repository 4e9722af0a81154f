"""LLM text made plain: what may be shown to a person, and the folded form every check reads.

An LLM's intro or reason is shown only as plain sentences. Anything that is not (markup, links,
URLs, code, JSON, percent- or entity-encoded text, letters from other scripts, look-alike letters
mixed into Latin words, words too long to be words, text without any letter) is reported as a
problem and the caller shows its template text instead: repairing such text piecewise would keep
whatever the markup was hiding.

:func:`fold` is the form the checks compare: NFKC, invisible characters removed, confusable
letters mapped to their Latin look-alikes, accents stripped, case folded. A title written with
Cyrillic letters, zero-width joiners or full-width forms folds to the title itself.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import unquote

# letters drawn like Latin ones (Unicode's confusables for Cyrillic, Greek, Armenian, Cherokee
# and a few symbols); NFKC already maps full-width, mathematical and ligature forms
_CONFUSABLE_PAIRS = (
    "аa вb гr дd еe ёe зz кk мm нh оo пn рp сc тt уy хx ьb эe єe іi їi јj ѕs ԁd ԛq ԝw ӏl һh үy "
    "ґr ɡg ɑa ɩi ɪi ʏy ʀr ʙb ɴn ʜh ʟl ᴀa ᴄc ᴅd ᴇe ᴊj ᴋk ᴍm ᴏo ᴘp ᴛt ᴜu ᴠv ᴡw ᴢz αa βb γy εe "
    "ζz ηn ιi κk μu νv οo ρp ςc σo τt υu χx ωw ϲc ϳj ϵe աw գq ցg հh ոn սu օo ꭰd ꭱr ꭲt ꭺa ꮃw "
    "ꮇm ꮋh ꮐg ꮪs ꮯc ℓl ℮e ⅼl ⅽc ⅾd ⅿm ıi ȷj ſs ꞵb ꜱs"
)
CONFUSABLES: dict[int, str] = {}
for _pair in _CONFUSABLE_PAIRS.split():
    CONFUSABLES[ord(_pair[0])] = _pair[1]
    _upper = _pair[0].upper()
    if len(_upper) == 1 and _upper != _pair[0] and ord(_upper) not in CONFUSABLES:
        CONFUSABLES[ord(_upper)] = _pair[1].upper()

# scripts a reason may be written in: Latin (with its accents), digits, punctuation, symbols
_LATIN_RANGES = ((0x0000, 0x024F), (0x1E00, 0x1EFF), (0x2000, 0x2BFF), (0x2E00, 0x2E7F))

TAG_RE = re.compile(r"<\s*/?\s*[a-z!?/]|[<>]", re.I)
ENTITY_RE = re.compile(r"&(?:#\d+|#x[0-9a-f]+|[a-z][a-z0-9]{1,31});?", re.I)
MARKDOWN_RE = re.compile(
    r"\[[^\]]*\]\s*\(|!\[|\*\*|__|~~|^\s*#{1,6}\s|^\s*[-*+>]\s|^\s*\d+[.)]\s|\|\s*[-:]{3}", re.M
)
CODE_RE = re.compile(r"[`{}\[\]\\]|=>|\$\(|;\s*$|\bfunction\s*\(|\w+\(\s*\)")
PERCENT_RE = re.compile(r"%[0-9a-f]{2}", re.I)
ESCAPE_RE = re.compile(r"\\[ux][0-9a-f]{2}|&#", re.I)
SCHEME_RE = re.compile(
    r"(?:javascript|vbscript|livescript|data|file|mailto|tel|sms|blob|about|ftp|https?|wss?|"
    r"chrome|intent|ms-[a-z]+)\s*:",
    re.I,
)
URL_RE = re.compile(
    r"://|\bwww\s*\.|\bhxxps?\b|\[\s*\.\s*\]|\(\s*dot\s*\)|\bdot\s+(?:com|net|org|io)\b"
    r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|ly|me|xyz|ru|cn|info|biz|co|"
    r"app|dev|gg|tv|us|uk|de|fr|link|click|site|online|top|to|sh|zip|mov)\b"
    r"|\b\d{1,3}(?:\.\d{1,3}){3}\b|@[a-z0-9_]{2,}|\b[\w.+-]+@[\w-]+\.",
    re.I,
)
COMPACT_LINK_RE = re.compile(
    r"javascript:|vbscript:|data:[a-z]+/|://|www\.|script>|onerror=|\.(?:com|net|org|io|ru|xyz)\b",
    re.I,
)
LETTER_RE = re.compile(r"[^\W\d_]")
WORD_RE = re.compile(r"\S+")
MAX_WORD = 30


def _invisible(ch: str) -> bool:
    """Zero-width characters, bidirectional overrides, soft hyphens, tag characters, variation
    selectors: drawn as nothing, or they reorder what is drawn."""
    cat = unicodedata.category(ch)
    return cat == "Cf" or (cat == "Mn" and 0xFE00 <= ord(ch) <= 0xFE0F) or 0xE0000 <= ord(ch)


def visible(text: str) -> str:
    """NFKC, invisible characters removed, control characters and runs of whitespace as one
    space: what is displayed of ``text`` (before any check)."""
    text = unicodedata.normalize("NFKC", text)
    out = []
    for ch in text:
        if _invisible(ch):
            continue
        out.append(" " if unicodedata.category(ch) in {"Cc", "Zl", "Zp"} else ch)
    return " ".join("".join(out).split())


def fold(text: str) -> str:
    """The form checks compare: ``visible``, confusables mapped to Latin, accents and other
    combining marks stripped, case folded."""
    text = visible(text).translate(CONFUSABLES)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return unicodedata.normalize("NFKC", text).casefold()


def _latin(ch: str) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _LATIN_RANGES)


@dataclass
class Plain:
    text: str  # the displayed form (``visible``), cut to the limit
    folded: str  # ``fold`` of the text, for the checks
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _problems(shown: str) -> list[str]:
    problems: list[str] = []
    unescaped = html.unescape(shown)
    decoded = unquote(unescaped)
    variants = {shown, unescaped, decoded, fold(decoded)}
    compact = {re.sub(r"\s+", "", v) for v in variants}
    if unescaped != shown or ESCAPE_RE.search(shown):
        problems.append("encoded")
    if decoded != unescaped or PERCENT_RE.search(shown):
        problems.append("encoded")
    if any(TAG_RE.search(v) for v in variants):
        problems.append("markup")
    if any(MARKDOWN_RE.search(v) for v in variants):
        problems.append("markup")
    if any(SCHEME_RE.search(v) or URL_RE.search(v) for v in variants) or any(
        COMPACT_LINK_RE.search(v) for v in compact
    ):
        problems.append("link")
    if any(CODE_RE.search(v) for v in variants):
        problems.append("code")
    words = WORD_RE.findall(shown)
    if any(len(w) > MAX_WORD for w in words):
        problems.append("long_word")
    if not LETTER_RE.search(shown):
        problems.append("empty")
    for word in words:
        letters = [ch for ch in word if LETTER_RE.match(ch)]
        if any(not _latin(ch) for ch in letters):
            # another script, or look-alike letters inside a Latin word
            problems.append("script")
            break
    return list(dict.fromkeys(problems))


def plain_text(raw: object, *, limit: int) -> Plain:
    """``raw`` (an LLM's string) as plain text of at most ``limit`` characters, with what is wrong
    with it. Too long is cut at a word and marked ``long``; everything else is for the caller
    to refuse."""
    if not isinstance(raw, str):
        return Plain("", "", ["empty"])
    shown = visible(raw[: limit * 8])  # a huge answer is not normalised in full
    problems = _problems(shown) if shown else ["empty"]
    if len(shown) > limit or len(raw) > limit * 8:
        problems.append("long")
        shown = shown[:limit].rsplit(" ", 1)[0].rstrip(" ,;:-") + "…"
    return Plain(shown, fold(shown), problems)
