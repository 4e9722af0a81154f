"""API endpoints of the recommender: my recommendations, similar items, staff training runs and
model versions. Every recommendation carries the full evidence of the explanation contract."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors as catalog_selectors
from recsite.api.caching import cache_headers
from recsite.api.permissions import IsStaff

from . import selectors, services
from .models import ModelVersion
from .serializers import (
    FiltersQuery,
    ModelVersionSerializer,
    RecommendationListSerializer,
    TrainingStartSerializer,
)


def _listing(recommendations, version_id: int | None) -> dict:
    return {
        "model_version": version_id,
        "count": len(recommendations),
        "results": [r.as_dict() for r in recommendations],
    }


class MyRecommendationsView(APIView):
    """My recommendations (`n` <= 100) under hard filters, each with its evidence and reason."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[FiltersQuery], responses={200: RecommendationListSerializer}, tags=["me"]
    )
    @cache_headers(public=False)
    def get(self, request: Request) -> Response:
        query = FiltersQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        version = selectors.version_active()
        recs = selectors.recommendations_for_user(
            user=request.user, n=query.validated_data["n"], filters=query.filters(), version=version
        )
        return Response(_listing(recs, version.pk if version else None))


class SimilarItemsView(APIView):
    """Items similar to this one, with evidence; signed in, my seen and dismissed items are left out."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[FiltersQuery], responses={200: RecommendationListSerializer}, tags=["items"]
    )
    @cache_headers(public=False)
    def get(self, request: Request, pk: int) -> Response:
        item = get_object_or_404(catalog_selectors.item_list(), pk=pk)
        query = FiltersQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        version = selectors.version_active()
        recs = selectors.similar_items(
            item=item,
            n=query.validated_data["n"],
            user=request.user if request.user.is_authenticated else None,
            filters=query.filters(),
        )
        return Response(_listing(recs, version.pk if version else None))


# --- staff -----------------------------------------------------------------------------------------


class TrainingRunView(APIView):
    """Staff: start a training run (or get the one already running). Poll the returned version."""

    permission_classes = [IsStaff]
    throttle_scope = "training"

    @extend_schema(
        request=TrainingStartSerializer, responses={202: ModelVersionSerializer}, tags=["staff"]
    )
    def post(self, request: Request) -> Response:
        data = TrainingStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.training_start(
            requested_by=request.user, algorithm=data.validated_data.get("algorithm")
        )
        version.refresh_from_db()
        return Response(
            ModelVersionSerializer(version).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/api/v1/staff/model-versions/{version.pk}/"},
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
