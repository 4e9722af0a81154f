"""Reading a ratings file as public datasets ship it, for ``manage.py evaluate --ratings``.

A site owner brings the file they have, not one in MovieLens's layout: ML-100K's ``u.data``
(tab-separated, no header), ML-1M's ``ratings.dat`` (``::``), Last.fm's ``user_artists.dat``
(tab-separated, ``userID artistID weight``), Book-Crossing's quoted ``;`` rows with ISBNs for
item ids, Amazon's reviewer and product codes. So the delimiter is read off the first line,
the header is optional (without one the columns are user, item and then value and timestamp),
ids may be any string, and timestamps may be seconds or ISO 8601 dates. Any row that does not
fit raises ``ValueError("<path>:<line>: ...")`` naming what is wrong.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .data import Interactions

__all__ = ["load_ratings_csv"]

# accepted column names (lower case, "_" and "-" ignored): user and item are required, value
# and time optional; other columns are ignored
_COLUMNS = {
    "user": ("userid", "user", "uid", "reviewerid", "customerid", "visitorid"),
    "item": (
        "movieid",
        "itemid",
        "item",
        "iid",
        "artistid",
        "trackid",
        "songid",
        "bookid",
        "isbn",
        "asin",
        "productid",
    ),
    "value": ("rating", "value", "weight", "playcount", "count", "plays", "score", "bookrating"),
    "timestamp": ("timestamp", "time", "ts", "date", "datetime", "unixreviewtime"),
}
_LAYOUT = "userId,movieId[,rating][,timestamp] (or user, item, value, timestamp without a header)"
# tried in this order on the first line: "::" before anything it could contain
_MAX_SECONDS = 2**62
_MAX_VALUE = float(np.finfo(np.float32).max)  # the values are stored as float32
_DELIMITERS = (("::", "'::'"), ("\t", "tab"), (",", "comma"), (";", "semicolon"), ("|", "'|'"))


def load_ratings_csv(path: str | os.PathLike[str]) -> Interactions:
    """Read a ratings file: one row per interaction, user and item required; without a value
    column every row weighs 1 (play counts and other implicit data go in the value), without a
    timestamp column every timestamp is 0 (see :attr:`Interactions.has_timestamps`).

    The delimiter is the first of ``::``, tab, comma, semicolon and ``|`` in the first line,
    else runs of whitespace. The first line is a header when it names a column (names as in
    MovieLens, ``user``/``item``/``rating``/``timestamp`` and the usual aliases); otherwise the
    columns are user, item, value, timestamp, as many as there are. Ids that are not all
    integers are numbered in their sorted order (``Interactions.item_labels`` keeps them).
    Timestamps: integer or decimal seconds, or ISO 8601 (UTC unless it says otherwise).
    UTF-8 (with or without a BOM), else Latin-1; CRLF or LF line endings; blank lines skipped,
    a field's surrounding double quotes dropped; line numbers in errors are 1-based.
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # ids are only labels here, and Latin-1 reads any byte: a file saved in a legacy
        # encoding (Book-Crossing's is Latin-1) is read as it is rather than refused
        text = raw.decode("latin-1")
    lines = text.splitlines()
    first = next((n for n, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise ValueError(f"{path}:1: empty file, expected rows like '{_LAYOUT}'")
    delimiter, delimiter_name = _delimiter(lines[first])
    head = _fields(lines[first], delimiter)
    cols = _header_columns(path, first + 1, head)
    if cols is None:  # no header: the columns by position
        if not 2 <= len(head) <= 4:
            raise ValueError(
                f"{path}:{first + 1}: expected a header or 2-4 fields ({_LAYOUT}), "
                f"got {len(head)}: {lines[first]!r}"
            )
        cols = dict(zip(("user", "item", "value", "timestamp"), range(len(head)), strict=False))
        start = first
    else:
        start = first + 1
    width = len(head)
    cu, ci = cols["user"], cols["item"]
    cv, ct = cols.get("value"), cols.get("timestamp")
    users: list[str] = []
    items: list[str] = []
    n = len(lines) - start
    stamps = np.zeros(n, dtype=np.int64)
    values = np.ones(n, dtype=np.float32)
    j = 0
    for lineno, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue
        fields = _fields(line, delimiter)
        if len(fields) != width:
            raise ValueError(
                f"{path}:{lineno}: expected {width} {delimiter_name}-separated fields, "
                f"got {len(fields)}: {line!r}"
            )
        user, item = fields[cu], fields[ci]
        if not user or not item:
            raise ValueError(f"{path}:{lineno}: the user and the item must not be empty: {line!r}")
        users.append(user)
        items.append(item)
        try:
            if cv is not None:
                values[j] = _value(fields[cv])
            if ct is not None:
                stamps[j] = _timestamp(fields[ct])
        except ValueError as exc:
            # a first line read as data may be a header whose names are not known
            hint = f" (a header? its columns are named {_LAYOUT})" if lineno == first + 1 else ""
            raise ValueError(f"{path}:{lineno}: {exc}: {line!r}{hint}") from None
        j += 1
    if j == 0:
        raise ValueError(f"{path}:{start}: no rows after the header")
    user_ids, _ = _ids(users)
    item_ids, item_labels = _ids(items)
    return Interactions(user_ids, item_ids, stamps[:j], values[:j], item_labels=item_labels)


def _delimiter(line: str) -> tuple[str | None, str]:
    for delimiter, name in _DELIMITERS:
        if delimiter in line:
            return delimiter, name
    return None, "whitespace"


def _fields(line: str, delimiter: str | None) -> list[str]:
    fields = line.split(delimiter) if delimiter is not None else line.split()
    out = []
    for field in fields:
        field = field.strip()
        if len(field) >= 2 and field[0] == field[-1] == '"':
            field = field[1:-1].strip()
        out.append(field)
    return out


def _header_columns(path: Path, lineno: int, names: list[str]) -> dict[str, int] | None:
    """The roles of a header's columns, or None when the line names no column (data)."""
    keys = [name.lower().replace("_", "").replace("-", "").replace(" ", "") for name in names]
    roles = [next((r for r, aliases in _COLUMNS.items() if k in aliases), None) for k in keys]
    if not any(roles):
        return None
    found: dict[str, int] = {}
    for pos, role in enumerate(roles):
        if role is None:
            continue
        if role in found:
            raise ValueError(
                f"{path}:{lineno}: expected header '{_LAYOUT}': two {role} columns in "
                f"{', '.join(names)}"
            )
        found[role] = pos
    if "user" not in found or "item" not in found:
        missing = " and ".join(r for r in ("user", "item") if r not in found)
        raise ValueError(
            f"{path}:{lineno}: expected header '{_LAYOUT}': no {missing} column in "
            f"{', '.join(names)}"
        )
    return found


def _value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"the value must be a number, got {text!r}") from None
    if not math.isfinite(value) or abs(value) > _MAX_VALUE:
        raise ValueError(f"the value must be a finite number, got {text!r}")
    return value


def _timestamp(text: str) -> int:
    seconds: float | None = None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"the timestamp must be seconds or an ISO 8601 date, got {text!r}"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return int(when.timestamp())
    if not math.isfinite(seconds) or abs(seconds) > _MAX_SECONDS:
        raise ValueError(f"the timestamp is out of range, got {text!r}")
    return int(text) if text.lstrip("+-").isdigit() else int(seconds)


def _ids(texts: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """(int64 ids, None) where every id is an integer; else (their numbers in sorted order, the
    sorted distinct ids)."""
    try:
        if any("_" in t for t in texts):  # int() reads "1_000" as 1000
            raise ValueError("not plain integers")
        return np.array([int(t) for t in texts], dtype=np.int64), None
    except (ValueError, OverflowError):
        labels, codes = np.unique(np.array(texts, dtype=object).astype(str), return_inverse=True)
        return codes.astype(np.int64), labels
