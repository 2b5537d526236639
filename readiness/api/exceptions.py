"""Every API error, whoever raises it, leaves in the one shape of PRODUCT.md §3:
``{"error": {"code", "message", "details"}}`` with the right status code.

DRF's own errors (401, 403, 404, 405, 406, 415, parse errors, serializer validation), Django's
``Http404``/``PermissionDenied``/``ValidationError`` and the services' ``ActionConflict`` are mapped
here, so views never build error responses themselves.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core import signals
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from readiness.scoring.services import ActionConflict
from readiness.security.errors import error_body, error_response

logger = logging.getLogger("readiness.api")

# DRF's ``ValidationError`` code is "invalid" for every field error; name the body's error after what
# went wrong for the caller instead.
INVALID_INPUT = "invalid_input"


def django_validation_details(exc: DjangoValidationError) -> dict[str, list[str]]:
    """A Django ``ValidationError`` as DRF-style details: ``{"field": ["message", ...]}``."""
    if hasattr(exc, "error_dict"):
        return exc.message_dict
    return {"non_field_errors": exc.messages}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's ``EXCEPTION_HANDLER``."""
    if isinstance(exc, DjangoValidationError):
        set_rollback()
        return Response(
            error_body(INVALID_INPUT, "Invalid input.", django_validation_details(exc)),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, ActionConflict):
        set_rollback()
        return Response(error_body("conflict", str(exc)), status=status.HTTP_409_CONFLICT)
    if isinstance(exc, Http404):
        # Never the reason: "does not exist" and "you may not read it" must look identical.
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, exceptions.APIException):
        set_rollback()
        return _api_exception_response(exc)
    return _unexpected_error_response(exc, context)


def _api_exception_response(exc: exceptions.APIException) -> Response:
    headers: dict[str, str] = {}
    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if wait := getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(wait))
    if isinstance(exc, exceptions.ValidationError):
        body = error_body(INVALID_INPUT, "Invalid input.", exc.detail)
    else:
        code = exc.get_codes()
        body = error_body(code if isinstance(code, str) else "error", str(exc.detail))
    return Response(body, status=exc.status_code, headers=headers)


def _unexpected_error_response(exc: Exception, context: dict[str, Any]) -> Response:
    # JSON only, even for a bug. The exception is logged with its traceback, and announced like an
    # unhandled one (error reporters and Django's test client listen to this signal).
    logger.error("Unhandled API error", exc_info=exc)
    request = getattr(context.get("request"), "_request", None)
    signals.got_request_exception.send(sender=None, request=request)
    set_rollback()
    return Response(
        error_body("server_error", "Internal server error."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    """Any URL under ``/api/v1/`` that names no endpoint: a 404 in the error shape, not an HTML page."""
    return error_response(404, "not_found", "Not found.")
