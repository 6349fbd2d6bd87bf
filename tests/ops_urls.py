"""A URLconf for tests/test_ops.py: the app's URLs plus a view that logs what must never
reach a log line unmasked."""

import logging

from django.http import JsonResponse
from django.urls import path

from config.urls import urlpatterns as app_urlpatterns

logger = logging.getLogger("tests.ops")


def careless(request):
    logger.warning(
        "looked up %s with api_key=%s, then sent Authorization: Bearer %s",
        "jane.roe@northwind.io",
        "sk_live_0123456789abcdef",
        "eyJhbGciOiJIUzI1NiJ9.payload.signature",
    )
    return JsonResponse({"ok": True})


urlpatterns = [*app_urlpatterns, path("careless", careless)]
