from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("chat/", include("chat.urls")),
    path("api/v1/", include("recsite.api.urls")),
    path("staff/", include("recommender.urls")),
    path("", include("catalog.urls")),
]
