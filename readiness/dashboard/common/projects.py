"""The one way a page finds the project it shows."""

from __future__ import annotations

from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from readiness.projects.models import OWNER_FIELDS, Project


def readable_project(request: HttpRequest, slug: str, *, owners: bool = True) -> Project:
    """The project with its team (and, with ``owners``, its responsible people), if the reader may see
    it. Outside ``visible_to`` the project does not exist for this person (PRODUCT.md §2): 404, not 403."""
    projects = Project.objects.visible_to(request.user).select_related("team")
    if owners:
        projects = projects.select_related(*OWNER_FIELDS.values())
    return get_object_or_404(projects, slug=slug)
