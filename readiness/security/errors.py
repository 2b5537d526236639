"""The one error shape of the REST API: ``{"error": {"code", "message", "details"}}`` (PRODUCT.md §3).

Here, in the lowest layer that answers with it (the rate limiter's 429), so that the API, the push
fast path and /metrics (readiness/observability) answer alike without importing the API."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpResponse


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> HttpResponse:
    """A plain Django response in the API's error shape, for views that bypass DRF (the push fast path)."""
    return HttpResponse(
        orjson.dumps(error_body(code, message, details)),
        status=status,
        content_type="application/json",
        headers=headers,
    )
