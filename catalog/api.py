"""API endpoints of the catalog: items (search, filters, cursor pagination), genres, the user's
history (interactions), and staff curation. Thin: validate, call selectors / services, serialize.
"""

from __future__ import annotations

from django.db.models import (
    Case,
    Count,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recommender.embeddings import selectors as emb_selectors
from recsite.api.caching import cache_headers
from recsite.api.permissions import IsOwner, IsStaff

from . import selectors, services
from .models import Interaction, Item
from .serializers import (
    HistoryQuery,
    InteractionCreateSerializer,
    InteractionSerializer,
    InteractionUpdateSerializer,
    ItemCurationSerializer,
    ItemListQuery,
    ItemSerializer,
)

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


# --- items ------------------------------------------------------------------------------------


def _popularity() -> Coalesce:
    """Ratings + likes per item, as a correlated count (0 when none): a keyset-able sort key."""
    counts = (
        Interaction.objects.filter(
            item=OuterRef("pk"), kind__in=[Interaction.Kind.RATING, Interaction.Kind.LIKE]
        )
        .order_by()
        .values("item")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


class ItemListView(generics.ListAPIView):
    """Items: full-text search (`q`), genre and year filters, ordering, cursor pagination."""

    serializer_class = ItemSerializer
    permission_classes = [permissions.AllowAny]

    def _query(self) -> dict:
        if not hasattr(self, "_validated_query"):
            query = ItemListQuery(data=self.request.query_params)
            query.is_valid(raise_exception=True)
            self._validated_query = query.validated_data
        return self._validated_query

    def get_cursor_ordering(self) -> tuple[str, ...]:
        params = self._query()
        default = "relevance" if (params.get("q") or "").strip() else "popular"
        return _ORDERINGS[params.get("ordering") or default]

    def get_queryset(self) -> QuerySet[Item]:
        params = self._query()
        ordering = self.get_cursor_ordering()
        qs = selectors.catalog_search(
            query=params.get("q", ""),
            genre=params.get("genre", ""),
            year_min=params.get("year_min"),
            year_max=params.get("year_max"),
            sort="title",  # always a queryset; the cursor ordering replaces this sort
        )
        if params.get("semantic") and (params.get("q") or "").strip():
            hybrid = emb_selectors.hybrid_catalog_ids(
                query=params["q"],
                genre=params.get("genre", ""),
                year_min=params.get("year_min"),
                year_max=params.get("year_max"),
            )
            if hybrid:  # the fused score replaces the full-text rank
                scores = [When(pk=item_id, then=Value(score)) for item_id, score in hybrid]
                qs = (
                    selectors.item_list()
                    .filter(pk__in=[i for i, _ in hybrid])
                    .annotate(rank=Case(*scores, default=Value(0.0), output_field=FloatField()))
                )
        if ordering[0] == "-pop_key":
            qs = qs.annotate(pop_key=_popularity())
        elif ordering[0].lstrip("-") == "year_key":
            qs = qs.annotate(year_key=Coalesce(F("year"), Value(0)))
        return qs

    @extend_schema(parameters=[ItemListQuery], tags=["items"])
    @cache_headers(public=True, max_age=60)
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class ItemDetailView(generics.RetrieveAPIView):
    serializer_class = ItemSerializer
    permission_classes = [permissions.AllowAny]

    def get_queryset(self) -> QuerySet[Item]:
        return selectors.item_list()

    @extend_schema(tags=["items"])
    @cache_headers(public=True, max_age=60)
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class GenreListView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        responses={
            200: inline_serializer(
                "Genres", {"genres": serializers.ListField(child=serializers.CharField())}
            )
        },
        tags=["items"],
    )
    @cache_headers(public=True, max_age=300)
    def get(self, request: Request) -> Response:
        return Response({"genres": selectors.item_genres()})


# --- my history ---------------------------------------------------------------------------------


class HistoryListView(generics.ListCreateAPIView):
    """My interactions, newest first (filter by `kind`); POST records (or replaces) one."""

    serializer_class = InteractionSerializer
    permission_classes = [permissions.IsAuthenticated]
    cursor_ordering = ("-timestamp", "-id")

    def get_queryset(self) -> QuerySet[Interaction]:
        query = HistoryQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        kind = query.validated_data.get("kind")
        return selectors.user_history(
            user=self.request.user, kinds=[kind] if kind else None
        ).filter(item__is_hidden=False)

    @extend_schema(parameters=[HistoryQuery], tags=["me"])
    @cache_headers(public=False)
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=InteractionCreateSerializer, responses={201: InteractionSerializer}, tags=["me"]
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        data = InteractionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = get_object_or_404(selectors.item_list(), pk=data.validated_data["item_id"])
        interaction = services.interaction_record(
            user=request.user,
            item=item,
            kind=data.validated_data["kind"],
            value=data.validated_data.get("value"),
            source=Interaction.Source.API,
        )
        return Response(InteractionSerializer(interaction).data, status=status.HTTP_201_CREATED)


class HistoryDetailView(APIView):
    """One of my interactions: read, change a rating's value (PATCH), delete.

    Another user's interaction id is "not found" (404), never "forbidden": ids reveal nothing.
    """

    permission_classes = [IsOwner]

    def get_object(self, pk: int) -> Interaction:
        interaction = get_object_or_404(
            selectors.user_history(user=self.request.user).filter(item__is_hidden=False), pk=pk
        )
        self.check_object_permissions(self.request, interaction)
        return interaction

    @extend_schema(responses={200: InteractionSerializer}, tags=["me"])
    @cache_headers(public=False)
    def get(self, request: Request, pk: int) -> Response:
        return Response(InteractionSerializer(self.get_object(pk)).data)

    @extend_schema(
        request=InteractionUpdateSerializer, responses={200: InteractionSerializer}, tags=["me"]
    )
    def patch(self, request: Request, pk: int) -> Response:
        interaction = self.get_object(pk)
        data = InteractionUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        if "value" not in data.validated_data:  # a PATCH that changes nothing
            return Response(InteractionSerializer(interaction).data)
        if interaction.kind != Interaction.Kind.RATING:
            return Response(
                {"message": "only ratings have a value to change", "extra": {"field": "value"}},
                status=status.HTTP_400_BAD_REQUEST,
            )
        updated = services.interaction_record(
            user=request.user,
            item=interaction.item,
            kind=interaction.kind,
            value=data.validated_data["value"],
            source=Interaction.Source.API,
        )
        return Response(InteractionSerializer(updated).data)

    @extend_schema(responses={204: None}, tags=["me"])
    def delete(self, request: Request, pk: int) -> Response:
        self.get_object(pk)
        services.interaction_delete(user=request.user, interaction_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- staff: curation -------------------------------------------------------------------------------


class StaffItemView(APIView):
    """Staff: an item's curation flags (hidden items included); PATCH changes them live."""

    permission_classes = [IsStaff]

    @extend_schema(responses={200: ItemCurationSerializer}, tags=["staff"])
    def get(self, request: Request, pk: int) -> Response:
        item = get_object_or_404(selectors.item_list(include_hidden=True), pk=pk)
        return Response(ItemCurationSerializer(item).data)

    @extend_schema(
        request=ItemCurationSerializer, responses={200: ItemCurationSerializer}, tags=["staff"]
    )
    def patch(self, request: Request, pk: int) -> Response:
        item = get_object_or_404(selectors.item_list(include_hidden=True), pk=pk)
        data = ItemCurationSerializer(item, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = {
            k: v
            for k, v in data.validated_data.items()
            if k in {"is_hidden", "is_featured", "is_pinned", "boost"}
        }
        if changes:
            services.items_curate(items=[item.pk], **changes)
            item.refresh_from_db()
        return Response(ItemCurationSerializer(item).data)
