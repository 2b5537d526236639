"""Reading a project token from ``Authorization: Bearer <token>``; shared by DRF views and the push
fast path so both authenticate exactly alike."""

from __future__ import annotations

from django.http import HttpRequest

from readiness.projects.models import ProjectToken


def bearer_secret(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


def token_from_request(request: HttpRequest) -> ProjectToken | None:
    """The usable token the request carries, or None (absent, unknown or revoked)."""
    secret = bearer_secret(request)
    if secret is None:
        return None
    token = ProjectToken.objects.for_secret(secret)
    if token is not None:
        token.touch()
    return token
