"""API endpoints of the catalog: items, genres, the user's history (interactions) and standing
preferences, and staff curation. Thin: validate, call selectors / services, serialize.
"""

from __future__ import annotations

from django.db.models import (
    QuerySet,
)
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recsite.api.caching import cache_headers
from recsite.api.pagination import PAGINATION_PARAMETERS
from recsite.api.permissions import IsOwner, IsStaff

from . import selectors, services
from .models import Interaction, Item, Preference
from .serializers import (
    HistoryQuery,
    InteractionCreateSerializer,
    InteractionSerializer,
    InteractionUpdateSerializer,
    ItemCurationSerializer,
    ItemSerializer,
    PreferenceSerializer,
)

# --- items ------------------------------------------------------------------------------------
# (the search list, full text + semantic, is recommender.api.ItemListView: it reads embeddings)


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
        query = HistoryQuery(
            data=self.request.query_params, context={"also_accepted": PAGINATION_PARAMETERS}
        )
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


# --- my standing preferences -------------------------------------------------------------------


class PreferenceListView(generics.ListCreateAPIView):
    """My standing preferences (also learnt from chat, e.g. "no more horror"); POST adds one."""

    serializer_class = PreferenceSerializer
    permission_classes = [permissions.IsAuthenticated]
    pagination_class = None

    def get_queryset(self) -> QuerySet[Preference]:
        return selectors.preference_list(user=self.request.user)

    @extend_schema(tags=["me"])
    @cache_headers(public=False)
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(tags=["me"], responses={201: PreferenceSerializer})
    def post(self, request: Request, *args, **kwargs) -> Response:
        data = PreferenceSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        preference = services.preference_create(user=request.user, **data.validated_data)
        return Response(PreferenceSerializer(preference).data, status=status.HTTP_201_CREATED)


class PreferenceDetailView(APIView):
    permission_classes = [IsOwner]

    @extend_schema(tags=["me"], responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        services.preference_delete(user=request.user, preference_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
