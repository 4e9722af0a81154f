from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("recsite.api.urls")),
    path("", include("front.urls")),  # every browser page: catalog, chat, staff dashboard
]
