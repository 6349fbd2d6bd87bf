"""How the API describes itself in its OpenAPI schema (drf-spectacular)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `manage.py create_api_key NAME --role ROLE`.",
        }


class ErrorSerializer(serializers.Serializer):
    """Every error answer."""

    code = serializers.CharField(help_text="Machine-readable: not_found, invalid, throttled, …")
    message = serializers.CharField(help_text="What went wrong and what to do about it.")
    errors = serializers.JSONField(
        required=False, help_text="Validation errors only: each field and its problems."
    )


class ApiAutoSchema(AutoSchema):
    """drf-spectacular's schema, plus the JSON error answers every operation can give."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in ERROR_CODES:
            error = self._get_response_for_code(ErrorSerializer, str(code), direction=direction)
            responses.setdefault(str(code), error)
        return responses


# Answers any operation can give besides its own: bad input, no or a bad key, a role that
# may not, nothing there, a method or body type the operation does not take, too many calls.
ERROR_CODES = (400, 401, 403, 404, 405, 406, 415, 429)


def lead_create_takes_lists(result, generator, request, public):
    """Postprocessing hook: POST /api/leads/ takes one lead or a list of up to MAX_BULK.

    drf-spectacular describes one serializer per request body; the list form is added here.
    """
    from api.serializers import MAX_BULK

    create = result.get("paths", {}).get("/api/leads/", {}).get("post")
    if create is None:
        return result
    for media in create["requestBody"]["content"].values():
        one = media["schema"]
        media["schema"] = {
            "oneOf": [one, {"type": "array", "items": one, "minItems": 1, "maxItems": MAX_BULK}]
        }
    return result
