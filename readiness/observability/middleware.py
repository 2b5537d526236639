"""The two outermost middlewares: request context (id, timing, metrics) and the ops endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from readiness.observability.context import request_id_from, request_id_var
from readiness.observability.metrics import record_request
from readiness.observability.views import ENDPOINTS

REQUEST_ID_HEADER = "X-Request-ID"


class RequestContextMiddleware:
    """Gives every request an id (the caller's ``X-Request-ID`` when safe, else a new one), returns it
    in the response, puts it on every log line of the request, and counts and times the request by
    the name of the view that answered it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.static_prefix = "/" + settings.STATIC_URL.lstrip("/")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        # Not reset on the way out: Django logs a 4xx/5xx ("Not Found: ...") after the middlewares
        # returned, and that line belongs to this request too. request_finished clears it (apps.py).
        request_id_var.set(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        record_request(
            view=self.view_name(request),
            method=request.method or "",
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
        return response

    def view_name(self, request: HttpRequest) -> str:
        # URL names are a fixed set; a path would let any caller mint a new series per URL.
        match = getattr(request, "resolver_match", None)
        if match is not None:
            return match.view_name or "unnamed"
        ops = getattr(request, "ops_endpoint", None)
        if ops is not None:
            return ops
        if request.path.startswith(self.static_prefix):
            return "static"
        return "unmatched"


class OpsEndpointsMiddleware:
    """Answers ``/healthz``, ``/readyz`` and ``/metrics`` before anything that could refuse a probe
    (see readiness/observability/views.py)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = ENDPOINTS.get(request.path_info)
        if view is None:
            return self.get_response(request)
        request.ops_endpoint = request.path_info.lstrip("/")
        return view(request)
