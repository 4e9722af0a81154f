"""One rule for usernames, shared by the API's sign-up and the browser's sign-up form.

A name is stored NFKC-normalised (as Django's ``create_user`` stores it: fullwidth ``ＤＵＰ``
becomes ``DUP``), so every check runs on the normalised name, never on what was typed. Two names
clash when their *skeletons* are equal: NFKC, lower case, ``ß`` as ``ss``, then the common
Cyrillic and Greek look-alikes of Latin letters folded to those letters. So ``bob``, ``BOB``,
``ｂｏｂ`` and ``bоb`` (a Cyrillic ``о``) are one name: the first taken refuses the others.

The database computes the same skeleton (``normalize``, ``lower``, ``replace``, ``translate``)
for the names it holds, so the check needs no extra column.
"""

from __future__ import annotations

import re
import unicodedata

from django.contrib.auth import get_user_model
from django.db.models import F, Func, Value
from django.db.models.functions import Lower, Replace

USERNAME_MAX_LENGTH = 150
USERNAME_PATTERN = r"^[\w.@+-]+\Z"
_USERNAME_RE = re.compile(USERNAME_PATTERN)

# Lower-case look-alikes of Latin letters (upper-case ones are lowered before folding, so the
# lower-case form of an upper-case look-alike, e.g. Cyrillic "в" of "В", folds to its Latin twin).
CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ь": "b", "ѕ": "s", "і": "i", "ј": "j", "һ": "h", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "ӏ": "l", "ү": "y",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ζ": "z", "η": "h", "ι": "i", "κ": "k", "μ": "m", "ν": "v",
    "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    # Latin look-alikes of other Latin letters
    "ı": "i", "ɑ": "a", "ɡ": "g", "ɩ": "i", "ʏ": "y",
}  # fmt: skip
_FOLD_FROM = "".join(CONFUSABLES)
_FOLD_TO = "".join(CONFUSABLES.values())
_FOLD_TABLE = str.maketrans(_FOLD_FROM, _FOLD_TO)


def username_normalize(name: str) -> str:
    """The name as it is stored (NFKC, like ``AbstractBaseUser.normalize_username``)."""
    return unicodedata.normalize("NFKC", name)


def username_problem(name: str) -> str | None:
    """Why the normalised ``name`` cannot be a username, or None when it can."""
    if not name:
        return "a username is needed"
    if len(name) > USERNAME_MAX_LENGTH:
        return f"at most {USERNAME_MAX_LENGTH} characters (after Unicode normalisation)"
    if not _USERNAME_RE.match(name):
        return "letters, digits and @ . + - _ only"
    return None


def username_skeleton(name: str) -> str:
    """What the name looks like: equal skeletons are names a person could mistake for each other."""
    return username_normalize(name).lower().replace("ß", "ss").translate(_FOLD_TABLE)


def _skeleton_sql() -> Func:
    normalized = Func(
        F("username"), function="normalize", template="%(function)s(%(expressions)s, NFKC)"
    )
    folded = Replace(Lower(normalized), Value("ß"), Value("ss"))
    return Func(folded, Value(_FOLD_FROM), Value(_FOLD_TO), function="translate")


def username_taken(name: str) -> str | None:
    """Why ``name`` clashes with an existing account ("taken", "look-alike"), or None."""
    users = get_user_model().objects
    normalized = username_normalize(name)
    if users.filter(username__iexact=normalized).exists():
        return "taken"
    if users.annotate(skeleton=_skeleton_sql()).filter(skeleton=username_skeleton(name)).exists():
        return "look-alike"
    return None


def username_clash_message(reason: str) -> str:
    if reason == "look-alike":
        return "that username looks like one that is taken"
    return "that username is taken"
