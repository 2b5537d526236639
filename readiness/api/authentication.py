"""Who is calling: a project API token (``Authorization: Bearer rdy_...``) or a logged-in person."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from readiness.api.tokens import token_from_request
from readiness.projects.models import ProjectToken
from readiness.security.bearer import bearer_secret


class BearerTokenAuthentication(BaseAuthentication):
    """A project token acts for its project, not for a person: ``request.user`` stays anonymous and
    the token is ``request.auth``. A bearer header with an unknown or revoked token is a 401, never a
    fall-through to the session, so a pipeline with a dead token fails loudly."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ProjectToken] | None:
        if bearer_secret(request._request) is None:
            return None
        token = token_from_request(request._request)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        return AnonymousUser(), token

    def authenticate_header(self, request: Request) -> str:
        # Listed first in DEFAULT_AUTHENTICATION_CLASSES, this makes an anonymous call a 401, not a 403.
        return 'Bearer realm="api"'


def caller_token(request: Request) -> ProjectToken | None:
    return request.auth if isinstance(request.auth, ProjectToken) else None
