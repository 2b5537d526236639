"""The API's default permission: someone must be calling. What they may read or do in a project is
decided per project in ``readiness.api.access``, where a refusal becomes a 404 or a 403."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from readiness.api.authentication import caller_token

if TYPE_CHECKING:
    # Only for the hint: this module is imported while rest_framework.views is (DRF settings).
    from rest_framework.views import APIView


class IsCaller(BasePermission):
    """A project token or a logged-in person; anyone else gets a 401 (PRODUCT.md §3)."""

    message = "Authentication credentials were not provided."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return caller_token(request) is not None or bool(request.user and request.user.is_authenticated)
