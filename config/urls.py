from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import readyz


def healthz(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("", include("leads.urls")),
    path("accounts/", include("accounts.urls")),
    path("dashboard/", include("enrichment.dashboard")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("api.urls")),
    path("webhooks/", include("webhooks.urls")),
    path("healthz", healthz),
    path("readyz", readyz),
]
