"""/api/v1/: every endpoint of the REST API, its OpenAPI schema and interactive docs."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path, register_converter
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from catalog import api as catalog_api
from chat import api as chat_api
from recommender import api as recommender_api

from . import auth
from .caching import conditional_get


class IdConverter:
    """A positive database id: at most 18 digits (fits a bigint), else the URL does not match."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "api_id")


def _view(view_class, **initkwargs):
    """A DRF view with ETag / If-None-Match handling on GET."""
    return conditional_get(view_class.as_view(**initkwargs))


@csrf_exempt
def not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    return JsonResponse({"message": "Not found.", "extra": {}}, status=404)


app_name = "api"
urlpatterns = [
    path("ping/", _view(auth.PingView), name="ping"),
    # accounts
    path("auth/signup/", _view(auth.SignupView), name="signup"),
    path("auth/token/", _view(auth.TokenView), name="token"),
    path("auth/me/", _view(auth.MeView), name="me"),
    # catalog
    path("items/", _view(recommender_api.ItemListView), name="item-list"),
    path("items/<api_id:pk>/", _view(catalog_api.ItemDetailView), name="item-detail"),
    path(
        "items/<api_id:pk>/similar/", _view(recommender_api.SimilarItemsView), name="item-similar"
    ),
    path("genres/", _view(catalog_api.GenreListView), name="genres"),
    # me
    path(
        "me/recommendations/", _view(recommender_api.MyRecommendationsView), name="recommendations"
    ),
    path("me/history/", _view(catalog_api.HistoryListView), name="history-list"),
    path("me/history/<api_id:pk>/", _view(catalog_api.HistoryDetailView), name="history-detail"),
    path("me/preferences/", _view(catalog_api.PreferenceListView), name="preference-list"),
    path(
        "me/preferences/<api_id:pk>/",
        _view(catalog_api.PreferenceDetailView),
        name="preference-detail",
    ),
    # chat
    path("conversations/", _view(chat_api.ConversationListView), name="conversation-list"),
    path(
        "conversations/<api_id:pk>/",
        _view(chat_api.ConversationDetailView),
        name="conversation-detail",
    ),
    path(
        "conversations/<api_id:pk>/messages/",
        _view(chat_api.MessagePostView),
        name="conversation-messages",
    ),
    path(
        "conversations/<api_id:pk>/messages/stream/",
        chat_api.MessageStreamView.as_view(),
        name="conversation-messages-stream",
    ),
    # staff
    path("staff/items/<api_id:pk>/", _view(catalog_api.StaffItemView), name="staff-item"),
    path("staff/training-runs/", _view(recommender_api.TrainingRunView), name="training-runs"),
    path(
        "staff/model-versions/", _view(recommender_api.ModelVersionListView), name="model-versions"
    ),
    path(
        "staff/model-versions/<api_id:pk>/",
        _view(recommender_api.ModelVersionDetailView),
        name="model-version-detail",
    ),
    # schema and docs (swagger-ui / redoc from local static files)
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    # any character, newlines (%0A) included: every unknown path is the API's JSON 404
    re_path(r"^[\s\S]*$", not_found),
]
