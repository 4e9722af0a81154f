"""API endpoints of the recommender: the item search list (full text + semantic), my
recommendations, similar items, staff training runs and model versions. Every recommendation
carries the full evidence of the explanation contract."""

from __future__ import annotations

from functools import cached_property

from django.db.models import (
    Count,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors as catalog_selectors
from catalog.models import POSITIVE_KINDS, Interaction, Item
from catalog.query_words import query_words
from catalog.serializers import ItemListQuery, ItemSerializer
from recsite.api.caching import cache_headers
from recsite.api.pagination import PAGINATION_PARAMETERS
from recsite.api.permissions import IsStaff

from . import selectors, services
from .lists import user_list
from .models import ModelVersion
from .search import PAGE_DEFERRED, ranked_items, search_ranking
from .serializers import (
    DEFAULT_N,
    FiltersQuery,
    ModelVersionSerializer,
    RecommendationListSerializer,
    TrainingStartSerializer,
)
from .types import Filters


def _list_query(request: Request) -> tuple[int, Filters]:
    """``n`` and the hard filters of a list's query; without parameters (the common case) the
    defaults, without building the validating serializer."""
    if not request.query_params:
        return DEFAULT_N, Filters()
    query = FiltersQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data["n"], query.filters()


def _listing(recommendations, version_id: int | None) -> dict:
    return {
        "model_version": version_id,
        "count": len(recommendations),
        "results": [r.as_dict() for r in recommendations],
    }


# ordering name -> (annotation to add or None, cursor ordering). The first field of each ordering
# is never NULL (cursor pagination compares on it), ties are broken by the cursor's offset.
_ORDERINGS: dict[str, tuple[str, ...]] = {
    "relevance": ("-rank", "id"),
    "popular": ("-pop_key", "id"),
    "title": ("title", "id"),
    "-title": ("-title", "-id"),
    "year": ("year_key", "id"),
    "-year": ("-year_key", "-id"),
}


# --- items (the catalog's search list, with semantic search from the embeddings) ------------------------------------------------------------------------------------


def _popularity() -> Coalesce:
    """Ratings + likes per item, as a correlated count (0 when none): a keyset-able sort key."""
    counts = (
        Interaction.objects.filter(item=OuterRef("pk"), kind__in=POSITIVE_KINDS)
        .order_by()
        .values("item")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


class _RankingHead:
    """A relevance ranking's first page as the cursor paginator reads a queryset there: in its
    one order (``("-rank", "id")``), one slice, the page and the row after it, read by id in one
    fixed statement (``search.ranked_items``). Later pages carry a cursor and read a queryset."""

    ordering = _ORDERINGS["relevance"]

    def __init__(self, best: list[tuple[int, float]]) -> None:
        self._best = best

    def order_by(self, *fields: str) -> _RankingHead:
        if fields != self.ordering:
            raise ValueError(f"a ranking's head is in {self.ordering} order, not {fields}")
        return self

    def __getitem__(self, window: slice) -> list[Item]:
        return ranked_items(self._best[window])


class ItemListView(generics.ListAPIView):
    """Items: full-text search (`q`; by relevance, the 500 best matches), genre and year
    filters, ordering, cursor pagination."""

    serializer_class = ItemSerializer
    permission_classes = [permissions.AllowAny]

    def _query(self) -> dict:
        if not hasattr(self, "_validated_query"):
            query = ItemListQuery(
                data=self.request.query_params,
                context={"also_accepted": PAGINATION_PARAMETERS},
            )
            query.is_valid(raise_exception=True)
            self._validated_query = query.validated_data
        return self._validated_query

    @cached_property
    def _text(self) -> str:
        """The query's words for the full-text match (year words such as "90s" are filters)."""
        return query_words(self._query().get("q") or "").text

    def get_cursor_ordering(self) -> tuple[str, ...]:
        params = self._query()
        name = params.get("ordering") or ("relevance" if self._text else "popular")
        if name == "relevance" and not self._text:  # nothing to rank by: the popular order
            name = "popular"
        return _ORDERINGS[name]

    def get_queryset(self) -> QuerySet[Item] | _RankingHead:
        params = self._query()
        ordering = self.get_cursor_ordering()
        filters = {
            "genre": params.get("genre", ""),
            "year_min": params.get("year_min"),
            "year_max": params.get("year_max"),
        }
        ranking = None
        if self._text:
            ranking = search_ranking(
                query=params["q"], semantic=bool(params.get("semantic")), **filters
            )
            if not ranking.complete and ordering[0] != "-rank":
                ranking = None  # another order over every match
        if ranking is not None:
            best = ranking.best
            if ordering[0] == "-rank" and "cursor" not in self.request.query_params:
                # the first page is the ranking's head (in the same order): the page's rows and
                # the one after, which says whether there is a next page, are all it reads
                return _RankingHead(best)
            ids = [i for i, _ in best]
            # one array lookup per row: a CASE of up to 500 WHENs cost more to build in
            # Python and to evaluate than the rest of the search
            rank = RawSQL(
                '(%s::float8[])[array_position(%s::bigint[], "catalog_item"."id")]',
                ([score for _, score in best], ids),
                output_field=FloatField(),
            )
            qs = catalog_selectors.item_list().filter(pk__any=ids).annotate(rank=rank)
        else:
            # no words to rank, or more matches than a ranking keeps in another order: read in
            # SQL (year words in the query still bound the years)
            qs = catalog_selectors.catalog_search(
                query=params.get("q", ""),
                sort="title",  # always a queryset; the cursor ordering replaces this sort
                **filters,
            ).defer(None)
        # what the serializer never shows stays unread (the title's trigrams and the timestamps'
        # parsing cost more than the rest of a row); catalog_search's card columns are shown here
        # (left deferred, each would cost three queries per item)
        qs = qs.defer(*PAGE_DEFERRED)
        if ordering[0] == "-pop_key":
            qs = qs.annotate(pop_key=_popularity())
        elif ordering[0].lstrip("-") == "year_key":
            qs = qs.annotate(year_key=Coalesce(F("year"), Value(0)))
        return qs

    @extend_schema(parameters=[ItemListQuery], tags=["items"])
    @cache_headers(public=True, max_age=60)
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class MyRecommendationsView(APIView):
    """My recommendations (`n` <= 100) under hard filters, each with its evidence and reason.

    My standing preferences (`me/preferences/`, or "no more horror" said in chat) leave their
    genres out unless `genre` asks for one of them."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[FiltersQuery], responses={200: RecommendationListSerializer}, tags=["me"]
    )
    @cache_headers(public=False)
    def get(self, request: Request) -> Response:
        n, filters = _list_query(request)
        found = user_list(user=request.user, n=n, filters=filters)
        return Response(_listing(found.recommendations, found.version_id))


class SimilarItemsView(APIView):
    """Items similar to this one, with evidence; signed in, my seen and dismissed items are left out."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[FiltersQuery], responses={200: RecommendationListSerializer}, tags=["items"]
    )
    @cache_headers(public=False)
    def get(self, request: Request, pk: int) -> Response:
        item = selectors.reference_item(pk=pk)
        if item is None:
            raise Http404
        n, filters = _list_query(request)
        version = selectors.serving_state()[0]
        recs = selectors.similar_items(
            item=item,
            n=n,
            user=request.user if request.user.is_authenticated else None,
            filters=filters,
            version=version,
        )
        return Response(_listing(recs, version.pk if version else None))


# --- staff -----------------------------------------------------------------------------------------


class TrainingRunView(APIView):
    """Staff: start a training run (or get the one already running). It trains beside the
    request, as "train now" on the dashboard does: the answer (202) comes at once with the run
    queued, its URL in `Location`; poll that for `status` and `progress`."""

    permission_classes = [IsStaff]
    throttle_scope = "training"

    @extend_schema(
        request=TrainingStartSerializer, responses={202: ModelVersionSerializer}, tags=["staff"]
    )
    def post(self, request: Request) -> Response:
        data = TrainingStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.training_request(
            requested_by=request.user, algorithm=data.validated_data.get("algorithm")
        )
        version.refresh_from_db()
        return Response(
            ModelVersionSerializer(version).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": reverse("api:model-version-detail", args=[version.pk])},
        )


class ModelVersionListView(generics.ListAPIView):
    """Staff: model versions, newest first, with status, progress and metrics."""

    serializer_class = ModelVersionSerializer
    permission_classes = [IsStaff]
    cursor_ordering = ("-id",)

    def get_queryset(self) -> QuerySet[ModelVersion]:
        return selectors.version_list()

    @extend_schema(tags=["staff"])
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class ModelVersionDetailView(generics.RetrieveAPIView):
    """Staff: one model version (a training run): poll `status` / `progress` while it trains."""

    serializer_class = ModelVersionSerializer
    permission_classes = [IsStaff]

    def get_queryset(self) -> QuerySet[ModelVersion]:
        return selectors.version_list()

    @extend_schema(tags=["staff"])
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)
