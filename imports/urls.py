"""Routes under /api/imports/ (included by api.urls)."""

from django.urls import path, re_path

from imports import apis

app_name = "imports"

# Ids are positive and fit a bigint; anything else is a 404 before any query.
_ID = r"(?P<pk>[0-9]{1,18})"

urlpatterns = [
    path("", apis.CsvImportCreateApi.as_view(), name="create"),
    re_path(rf"^{_ID}/$", apis.CsvImportDetailApi.as_view(), name="detail"),
    re_path(rf"^{_ID}/start/$", apis.CsvImportStartApi.as_view(), name="start"),
    re_path(rf"^{_ID}/errors\.csv$", apis.CsvImportErrorsApi.as_view(), name="errors"),
    re_path(rf"^{_ID}/enriched\.csv$", apis.CsvImportEnrichedApi.as_view(), name="enriched"),
]
