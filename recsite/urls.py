from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView


class FaviconView(RedirectView):
    """``/favicon.ico``, which browsers ask for on pages that name no icon (the admin's, an API
    response opened in a tab): the site's icon, by its static URL (hashed in production, so
    resolved per request rather than at import)."""

    permanent = False

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static("recsite/favicon.svg")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("recsite.api.urls")),
    path("favicon.ico", FaviconView.as_view(), name="favicon"),
    path("", include("front.urls")),  # every browser page: catalog, chat, staff dashboard
]
