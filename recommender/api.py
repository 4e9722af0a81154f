"""API endpoints of the recommender: my recommendations, similar items, staff training runs and
model versions. Every recommendation carries the full evidence of the explanation contract."""

from __future__ import annotations

import hashlib
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors as catalog_selectors
from catalog.signals import items_curated
from chat import selectors as chat_selectors
from recsite.api.caching import cache_headers
from recsite.api.permissions import IsStaff

from . import selectors, services
from .models import ModelVersion
from .serializers import (
    DEFAULT_N,
    FiltersQuery,
    ModelVersionSerializer,
    RecommendationListSerializer,
    TrainingStartSerializer,
)
from .types import Filters


def _listing(recommendations, version_id: int | None) -> dict:
    return {
        "model_version": version_id,
        "count": len(recommendations),
        "results": [r.as_dict() for r in recommendations],
    }


# The active version and the catalog's fingerprint, shared by every request of this process for
# API_SERVING_STATE_SECONDS (default 1 s; curation in this process clears it at once). Saves two
# queries per request, one of them a scan of the items; other processes see a change within 1 s.
_serving_state: dict = {"expires": 0.0, "value": None}
_serving_lock = threading.Lock()


def _serving_state_get() -> tuple[ModelVersion | None, str]:
    ttl = float(getattr(settings, "API_SERVING_STATE_SECONDS", 0))
    now = time.monotonic()
    with _serving_lock:
        if _serving_state["value"] is not None and now < _serving_state["expires"]:
            return _serving_state["value"]
    value = (selectors.version_active(), catalog_selectors.catalog_fingerprint())
    with _serving_lock:
        _serving_state.update(value=value, expires=now + ttl)
    return value


def _serving_state_forget(**kwargs) -> None:
    with _serving_lock:
        _serving_state.update(value=None, expires=0.0)


items_curated.connect(_serving_state_forget, dispatch_uid="recommender.api.serving_state")


def _my_recommendations(*, user, n: int, filters: Filters) -> dict:
    """The user's list, cached until anything it depends on changes: their interactions, any
    item (curation included), the active model version, the request (n, filters) or their
    standing chat preferences. The key
    costs two indexed aggregates; computing the list costs far more (scoring + evidence)."""
    # the "no more X" the user said in chat applies here as in the chat and the web list
    filters = chat_selectors.filters_with_standing(user=user, filters=filters)
    seconds = int(getattr(settings, "API_RECOMMENDATIONS_CACHE_SECONDS", 0))
    if seconds <= 0:
        version = selectors.version_active()
        recs = selectors.recommendations_for_user(user=user, n=n, filters=filters, version=version)
        return _listing(recs, version.pk if version else None)
    version, catalog_fingerprint = _serving_state_get()
    parts = (
        user.pk,
        catalog_selectors.user_history_fingerprint(user=user),
        catalog_fingerprint,
        version.pk if version else 0,
        version.activated_at.timestamp() if version and version.activated_at else 0,
        n,
        sorted(filters.genres),
        sorted(filters.exclude_genres),
        filters.year_min,
        filters.year_max,
        sorted(filters.exclude_ids),
    )
    key = "api:recs:" + hashlib.sha1(repr(parts).encode()).hexdigest()
    listing = cache.get(key)
    if listing is None:
        recs = selectors.recommendations_for_user(user=user, n=n, filters=filters, version=version)
        listing = _listing(recs, version.pk if version else None)
        cache.set(key, listing, seconds)
    return listing


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
        if request.query_params:
            query = FiltersQuery(data=request.query_params)
            query.is_valid(raise_exception=True)
            n, filters = query.validated_data["n"], query.filters()
        else:  # the common case: defaults, no validation needed
            n, filters = DEFAULT_N, Filters()
        listing = _my_recommendations(user=request.user, n=n, filters=filters)
        return Response(listing)


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
