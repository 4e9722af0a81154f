"""What an import reports: its counts per table, or every bad row it refused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from recsite.exceptions import ApplicationError

Progress = Callable[[str], None]

# Past this many, more bad rows only add to the count: the message stays readable.
MAX_REPORTED_ERRORS = 200


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}: {self.message}"


class ImportFailed(ApplicationError):
    """Raised with every bad row found; nothing was written."""

    def __init__(self, errors: list[RowError], total: int | None = None):
        total = total if total is not None else len(errors)
        shown = errors[:MAX_REPORTED_ERRORS]
        super().__init__(
            f"import rejected: {total} bad row(s); nothing was written",
            extra={"errors": [str(e) for e in shown], "error_count": total},
        )
        self.errors = shown
        self.total = total


@dataclass
class TableCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


@dataclass
class ImportReport:
    tables: dict[str, TableCounts] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [f"{name}: {counts}" for name, counts in self.tables.items()]

    @property
    def changed(self) -> bool:
        return any(c.created or c.updated for c in self.tables.values())
