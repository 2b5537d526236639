"""Reading the secret of ``Authorization: Bearer <secret>``: project tokens (the API, the push fast
path, the rate limiter's key) and the scraper's token of /metrics are all read by this one rule."""

from __future__ import annotations

from django.http import HttpRequest


def bearer_secret(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()
