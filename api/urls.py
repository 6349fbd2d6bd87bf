"""Routes under /api/. Anything else under /api/ answers a JSON 404."""

from importlib.util import find_spec

from django.apps import apps
from django.urls import include, path, re_path
from rest_framework.routers import SimpleRouter

from api import views

router = SimpleRouter()
router.register("leads", views.LeadViewSet, basename="lead")
router.register("observations", views.ObservationViewSet, basename="observation")
router.register("companies", views.CompanyViewSet, basename="company")
router.register("runs", views.RunViewSet, basename="run")
router.register("jobs", views.JobViewSet, basename="job")

urlpatterns = [
    *router.urls,
    path("usage/", views.UsageApi.as_view(), name="usage"),
]

# CSV imports are their own app; their routes join the API when it is installed.
if apps.is_installed("imports") and find_spec("imports.urls") is not None:
    urlpatterns.append(path("imports/", include("imports.urls")))

urlpatterns.append(re_path(r"^(?P<path>.*)$", views.api_not_found))
