"""The one exception class for expected failures (bad input, missing objects, refused actions).

The API renders it as ``{"message": ..., "extra": ...}``; htmx views render it as an error partial.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    def __init__(self, message: str, extra: dict[str, Any] | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        self.status = status

    def as_dict(self) -> dict[str, Any]:
        return {"message": self.message, "extra": self.extra}
