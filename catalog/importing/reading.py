"""Reading import files: CSV rows with their line numbers, and the parsing of single values.

Parsers raise ``ValueError`` with a message meant for the person who wrote the file; the importers
add it to an ``ErrorLog`` with the file name and line.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .reports import MAX_REPORTED_ERRORS, ImportFailed, RowError

_YEAR_RE = re.compile(r"\s*\((\d{4})(?:[–-]\d{0,4})?\)\s*$")


class ErrorLog:
    def __init__(self) -> None:
        self.errors: list[RowError] = []
        self.total = 0

    def add(self, file: str, line: int, message: str) -> None:
        self.total += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(file, line, message))

    def raise_if_any(self) -> None:
        if self.total:
            raise ImportFailed(self.errors, self.total)


def read_csv(
    path: Path, required: list[str], errors: ErrorLog, optional: list[str] | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) for each data row; problems go to ``errors``.

    Accepts UTF-8 (with or without BOM), LF or CRLF. Reports an empty file, undecodable lines,
    missing columns and rows with the wrong number of fields.
    """
    name = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        errors.add(name, 0, f"cannot read file: {exc.strerror or exc}")
        return
    if not raw.strip():
        errors.add(name, 1, "file is empty (expected a header row)")
        return
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        for number, line in enumerate(raw.split(b"\n"), start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                errors.add(name, number, "not valid UTF-8 (wrong encoding?)")
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        errors.add(name, 1, f"unreadable header: {exc}")
        return
    missing = [c for c in required if c not in header]
    if missing:
        errors.add(name, 1, f"missing column(s): {', '.join(missing)} (header: {','.join(header)})")
        return
    width = len(header)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.add(name, reader.line_num, f"malformed CSV: {exc}")
            continue
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line
        if len(fields) != width:
            errors.add(name, reader.line_num, f"expected {width} fields, found {len(fields)}")
            continue
        yield reader.line_num, dict(zip(header, fields, strict=True))


def parse_int(value: str, what: str, *, minimum: int | None = None) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise ValueError(f"{what} must be a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {number}")
    return number


def parse_float(value: str, what: str) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return number


def parse_timestamp(value: str, what: str = "timestamp") -> datetime:
    value = value.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        seconds = float(value)
        if seconds < 0:
            raise ValueError(f"{what} must not be negative, got {value!r}")
        return datetime.fromtimestamp(seconds, tz=UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} must be unix seconds or ISO 8601, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def row_timestamp(row: dict[str, str]) -> datetime | None:
    """A row's ``timestamp``, or None where the file has no such column or leaves it blank (the
    writer then stamps the row with the import time)."""
    text = row.get("timestamp", "")
    return parse_timestamp(text) if text.strip() else None


def split_title_year(raw_title: str) -> tuple[str, int | None]:
    """'Toy Story (1995)' -> ('Toy Story', 1995). Titles without a year keep their text."""
    title = raw_title.strip()
    match = _YEAR_RE.search(title)
    if not match:
        return title, None
    return title[: match.start()].strip() or title, int(match.group(1))


def split_list(value: str) -> list[str]:
    """'Drama|Comedy|Drama' -> ['Drama', 'Comedy']; MovieLens's '(no genres listed)' is no genre."""
    out: list[str] = []
    for part in value.split("|"):
        part = part.strip()
        if part and part != "(no genres listed)" and part not in out:
            out.append(part)
    return out
