"""Cursor pagination: stable under inserts, opaque cursors, ``page_size`` from 1 to 100.

A view may pick its ordering per request with ``get_cursor_ordering()`` (e.g. the item list's
``ordering`` parameter); the first field must never be NULL (coalesce it in the queryset).

A cursor comes from the client, so it is input like any other: one that does not decode, or whose
position does not fit the sort field (text for a number, an infinite float, a NUL in a title, a
number past a bigint), is DRF's "Invalid cursor" 404 (a position that does not exist), never a
query that fails in the database. ``page_size`` outside 1..100 is a 400.
"""

from __future__ import annotations

import math
from datetime import date, datetime

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Field, QuerySet
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError

MAX_PAGE_SIZE = 100
_BIGINT = 2**63


def _invalid(param: str, message: str) -> ValidationError:
    return ValidationError({param: [message]})


def _sort_field(queryset: QuerySet, name: str) -> Field | None:
    annotation = queryset.query.annotations.get(name)
    if annotation is not None:
        return annotation.output_field
    try:
        return queryset.model._meta.get_field(name)
    except FieldDoesNotExist:
        return None


def _position_fits(field: Field | None, position: str) -> bool:
    """Whether ``position`` converts to a value of the sort field PostgreSQL accepts."""
    if "\x00" in position:  # PostgreSQL text never holds NUL; no other type parses it
        return False
    if field is None:
        return True
    try:
        value = field.to_python(position)
    except (DjangoValidationError, ValueError, TypeError, OverflowError):
        return False
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_BIGINT <= value < _BIGINT
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, datetime | date):
        return True
    return isinstance(value, str)


class CursorPagination(pagination.CursorPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = ("-id",)

    def get_ordering(self, request, queryset, view):  # type: ignore[override]
        chooser = getattr(view, "get_cursor_ordering", None)
        if chooser is not None:
            return tuple(chooser())
        return tuple(getattr(view, "cursor_ordering", self.ordering))

    def get_page_size(self, request) -> int:  # type: ignore[override]
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except (TypeError, ValueError):
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise _invalid(
                self.page_size_query_param,
                f"an integer from 1 to {self.max_page_size}",
            )
        return size

    def paginate_queryset(self, queryset, request, view=None):
        self._queryset = queryset  # decode_cursor checks the position against its sort field
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)  # NotFound(invalid_cursor_message) if garbled
        if cursor is not None and cursor.position is not None:
            field = _sort_field(self._queryset, self.ordering[0].lstrip("-"))
            if not _position_fits(field, cursor.position):
                raise NotFound(self.invalid_cursor_message)
        return cursor

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


# the query parameters a paginated list takes besides its own filters
PAGINATION_PARAMETERS = (
    CursorPagination.cursor_query_param,
    CursorPagination.page_size_query_param,
)
