"""Cursor pagination: stable under inserts, opaque cursors, ``page_size`` up to 100.

A view may pick its ordering per request with ``get_cursor_ordering()`` (e.g. the item list's
``ordering`` parameter); the first field must never be NULL (coalesce it in the queryset).
"""

from __future__ import annotations

from rest_framework import pagination

MAX_PAGE_SIZE = 100


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
        try:
            size = int(request.query_params.get(self.page_size_query_param, self.page_size))
        except (TypeError, ValueError):
            return self.page_size
        return max(1, min(size, self.max_page_size))
