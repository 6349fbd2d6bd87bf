"""Every API error is JSON a person can act on: {"code", "message", "errors"?}.

`message` says what went wrong and what to do about it; `errors` (validation only) maps
each field to its problems. Nothing about a request reaches Django's HTML error pages.
"""

import logging
import math

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from leads.normalize import InvalidValue

logger = logging.getLogger(__name__)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state of the resource."


class Refused(exceptions.APIException):
    """A service said no, with the status and code it chose and a message that says why;
    `retry_after` (seconds) becomes the Retry-After header, as for a throttled request."""

    def __init__(
        self, status_code: int, code: str, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code)
        self.status_code = status_code
        # DRF's handler writes Retry-After from `wait`, in whole seconds.
        self.wait = math.ceil(retry_after) if retry_after else None


def api_exception_handler(exc, context):
    """Turn any exception raised in an API view into a JSON error answer."""
    view = context.get("view")
    request = context.get("request")
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(_not_found_message(view))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, InvalidValue):
        exc = exceptions.ValidationError({exc.field: [str(exc)]})
    response = drf_exception_handler(exc, context)
    if response is None:
        # A bug: say so in JSON, and keep the traceback for the logs only.
        logger.exception("API view %s failed", type(view).__name__ if view else "?")
        return Response(
            {
                "code": "server_error",
                "message": "The server failed on this request; it has been logged. "
                "Try again later, and report it if it keeps happening.",
            },
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    response.data = _body(exc, response, view, request)
    return response


def _body(exc, response, view, request) -> dict:
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return {
            "code": "invalid",
            "message": f"The request has invalid values: {_first_problem(errors)}",
            "errors": errors,
        }
    code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
    detail = str(exc.detail) if not isinstance(exc.detail, dict | list) else code
    return {"code": code, "message": _advice(exc, detail, view, request, response)}


def _advice(exc, detail: str, view, request, response) -> str:
    if isinstance(exc, exceptions.NotAuthenticated):
        return (
            "Authentication is needed: send 'Authorization: Bearer <key>' with an API key "
            "(an admin creates one with manage.py create_api_key NAME --role sdr), or sign in."
        )
    if isinstance(exc, exceptions.MethodNotAllowed):
        allowed = ", ".join(view.allowed_methods) if view is not None else "see /api/docs/"
        return f"{request.method} is not allowed here; allowed: {allowed}."
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return f"{detail} Send the body as JSON with 'Content-Type: application/json'."
    if isinstance(exc, exceptions.ParseError):
        return f"{detail.rstrip('.')}. Send a valid JSON body."
    if isinstance(exc, exceptions.NotAcceptable):
        return f"{detail} Ask for 'Accept: application/json'."
    if isinstance(exc, exceptions.Throttled):
        wait = exc.wait if exc.wait is not None else 1
        return (
            f"Too many requests from this client: wait {max(1, round(wait))} s (see the "
            "Retry-After header) and spread requests out, or send lists of up to 1000 leads "
            "in one call."
        )
    return detail


def _first_problem(errors, prefix: str = "") -> str:
    if isinstance(errors, dict):
        for name, problems in errors.items():
            return _first_problem(problems, f"{prefix}{name}: ")
    if isinstance(errors, list) and errors:
        return _first_problem(errors[0], prefix)
    return f"{prefix}{errors}"


def _not_found_message(view) -> str:
    unknown_format = _unknown_format(view)
    if unknown_format is not None:
        # DRF answers an unknown ?format= with a bare 404, which is no missing row.
        formats = [renderer.format for renderer in view.get_renderers()]
        return (
            f"There is no {unknown_format!r} format here: ask for "
            f"{' or '.join(formats)} with ?{api_settings.URL_FORMAT_OVERRIDE}=, or leave it out."
        )
    queryset = getattr(view, "queryset", None)
    kwargs = getattr(view, "kwargs", None) or {}
    if queryset is not None and "pk" in kwargs:
        name = queryset.model._meta.verbose_name
        return f"There is no {name} with id {kwargs['pk']}; list them at the collection's URL."
    return "Nothing here: check the URL against /api/docs/."


def _unknown_format(view) -> str | None:
    """Return the ?format= the request asked for when no renderer of the view has it."""
    request = getattr(view, "request", None)
    param = api_settings.URL_FORMAT_OVERRIDE
    if request is None or not param or not hasattr(request, "query_params"):
        return None
    asked = request.query_params.get(param)
    if not asked or asked in {renderer.format for renderer in view.get_renderers()}:
        return None
    return asked
