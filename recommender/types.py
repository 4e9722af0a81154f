"""The explanation contract (DESIGN.md) as dataclasses: what every recommendation carries.

Pages, the API and the chat all receive these from ``recommender.selectors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from django.db.models import Q, QuerySet

if TYPE_CHECKING:
    from collections.abc import Sequence

    from catalog.models import Item

EvidenceKind = Literal[
    "history_item", "shared_attribute", "similar_users", "query_match", "curated"
]
Source = Literal["cf", "semantic", "popular", "curated", "chat"]

EVIDENCE_KINDS: tuple[str, ...] = (
    "history_item",
    "shared_attribute",
    "similar_users",
    "query_match",
    "curated",
)
SOURCES: tuple[str, ...] = ("cf", "semantic", "popular", "curated", "chat")


@dataclass(frozen=True)
class Evidence:
    """One checked fact behind a recommendation.

    kind: history_item (``item_id`` is an item of the user's history that contributed, ``weight``
    its share of the score), shared_attribute (``label`` like "genre: Sci-Fi" or "tag: space",
    ``weight`` how many history items share it), similar_users (``weight`` share of similar users
    who liked it), query_match (what the query matched), curated (pinned / featured / boosted).
    """

    kind: EvidenceKind
    label: str
    weight: float = 0.0
    item_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "label": self.label,
            "weight": round(self.weight, 4),
        }
        if self.item_id is not None:
            out["item_id"] = self.item_id
        return out


@dataclass
class Recommendation:
    item: Item
    rank: int
    score: float
    source: Source
    evidence: list[Evidence] = field(default_factory=list)
    # a one-line reason a person reads at a glance, built only from ``evidence``
    reason: str = ""

    @property
    def history_item_ids(self) -> set[int]:
        return {e.item_id for e in self.evidence if e.kind == "history_item" and e.item_id}

    def as_dict(self) -> dict[str, Any]:
        item = self.item
        return {
            "item": {
                "id": item.pk,
                "external_id": item.external_id,
                "title": item.title,
                "display_title": item.display_title,
                "year": item.year,
                "genres": list(item.genres),
                "is_featured": item.is_featured,
                "is_pinned": item.is_pinned,
            },
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "source": self.source,
            "reason": self.reason,
            "evidence": [e.as_dict() for e in self.evidence],
        }


@dataclass(frozen=True)
class Filters:
    """Hard filters every selector honours."""

    genres: tuple[str, ...] = ()  # item must have at least one of these
    exclude_genres: tuple[str, ...] = ()  # item must have none of these
    year_min: int | None = None
    year_max: int | None = None
    exclude_ids: frozenset[int] = frozenset()
    include_ids: frozenset[int] | None = None  # restrict to these (e.g. a chat candidate set)

    def is_empty(self) -> bool:
        return self == Filters()

    def q(self) -> Q:
        """Visible and inside the filters, as one Django condition (the same conditions as
        :meth:`sql`, plus visibility)."""
        q = Q(is_hidden=False)
        if self.genres:
            q &= Q(genres__overlap=list(self.genres))
        if self.exclude_genres:
            q &= ~Q(genres__overlap=list(self.exclude_genres))
        if self.year_min is not None:
            q &= Q(year__gte=self.year_min)
        if self.year_max is not None:
            q &= Q(year__lte=self.year_max)
        if self.exclude_ids:
            q &= ~Q(pk__any=self.exclude_ids)
        if self.include_ids is not None:
            q &= Q(pk__any=self.include_ids)
        return q

    def apply(self, items: QuerySet[Item]) -> QuerySet[Item]:
        """``items`` that are visible and pass the filters."""
        return items.filter(self.q())

    def admits(self, *, pk: int, genres: Sequence[str] | None, year: int | None) -> bool:
        """Whether a visible item with these values passes the filters: :meth:`sql` evaluated
        in Python, with SQL's NULLs (an item without a year fails a year bound; tests hold the
        two equal)."""
        if self.genres and (genres is None or not any(g in genres for g in self.genres)):
            return False
        if self.exclude_genres and (
            genres is None or any(g in genres for g in self.exclude_genres)
        ):
            return False
        if self.year_min is not None and (year is None or year < self.year_min):
            return False
        if self.year_max is not None and (year is None or year > self.year_max):
            return False
        if pk in self.exclude_ids:
            return False
        return self.include_ids is None or pk in self.include_ids

    def sql(self, alias: str) -> tuple[str, list[Any]]:
        """The filters as SQL conditions on the item table under ``alias``, each starting with
        " AND " (empty without filters), and their parameters. Visibility (``is_hidden``) is
        the caller's; :meth:`q` is the same as a Django condition."""
        sql, params = "", []
        if self.genres:
            sql += f" AND {alias}.genres && %s::varchar[]"
            params.append(list(self.genres))
        if self.exclude_genres:
            sql += f" AND NOT ({alias}.genres && %s::varchar[])"
            params.append(list(self.exclude_genres))
        if self.year_min is not None:
            sql += f" AND {alias}.year >= %s"
            params.append(self.year_min)
        if self.year_max is not None:
            sql += f" AND {alias}.year <= %s"
            params.append(self.year_max)
        if self.exclude_ids:
            sql += f" AND NOT ({alias}.id = ANY(%s))"
            params.append(sorted(self.exclude_ids))
        if self.include_ids is not None:
            sql += f" AND {alias}.id = ANY(%s)"
            params.append(sorted(self.include_ids))
        return sql, params
