"""The one place that answers "may this caller read project X" and "may it do S there" for every
API view (PRODUCT.md §2, §3).

Order matters and is the same everywhere: first readability (a project, waiver or criterion the caller
may not read does not exist for it: 404, for tokens too: a token reads only its own project), then the
token's scope or the refusal of tokens for person-only actions (403). Whether a *person* holds the
right role (responsible person, team member) is the services' rule; they raise ``PermissionDenied``.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request

from readiness.api.authentication import caller_token
from readiness.projects.models import OWNER_FIELDS, Project, TokenScope
from readiness.scoring.models import Criterion, Waiver

READ = TokenScope.SCORECARD_READ.value
ATTEST = TokenScope.ATTEST.value
# For actions only a person may take (sign-offs, waivers, not-applicable): no token scope allows them.
PEOPLE_ONLY = None


def readable_projects(request: Request) -> QuerySet[Project]:
    token = caller_token(request)
    if token is not None:
        return Project.objects.filter(pk=token.project_id)
    return Project.objects.visible_to(request.user)


def require_token_scope(request: Request, token_scope: str | None) -> None:
    """A token needs ``token_scope``; with ``PEOPLE_ONLY`` no token may act at all. People pass."""
    token = caller_token(request)
    if token is None:
        return
    if token_scope is PEOPLE_ONLY:
        raise PermissionDenied("This action is for people only; a project token may not take it.")
    if not token.has_scope(token_scope):
        raise PermissionDenied(f"This token lacks the {token_scope} scope.")


def projects_for_caller(request: Request) -> QuerySet[Project]:
    """The projects the caller may read (the list endpoint): tokens need ``scorecard:read``."""
    require_token_scope(request, READ)
    return readable_projects(request)


def project_for_caller(request: Request, slug: str, *, token_scope: str | None) -> Project:
    """The project ``slug`` if the caller may read it (else 404) and holds ``token_scope`` (else 403).
    Loaded with its team and responsible people, ready for evaluation and for the detail."""
    project = (
        readable_projects(request).select_related("team", *OWNER_FIELDS.values()).filter(slug=slug).first()
    )
    if project is None:
        raise Http404
    require_token_scope(request, token_scope)
    return project


def criterion_for_caller(request: Request, slug: str, key: str, *, token_scope: str | None) -> Criterion:
    """A criterion named in the URL: 404 when the project is unreadable or has no such criterion."""
    project = project_for_caller(request, slug, token_scope=token_scope)
    criterion = Criterion.objects.filter(project=project, key=key).first()
    if criterion is None:
        raise Http404
    criterion.project = project
    return criterion


def waiver_for_caller(request: Request, waiver_id: int) -> Waiver:
    """A waiver to decide: 404 unless its project is readable; tokens never decide waivers (403)."""
    waiver = (
        Waiver.objects.select_related("criterion__project__team")
        .filter(pk=waiver_id, criterion__project__in=readable_projects(request))
        .first()
    )
    if waiver is None:
        raise Http404
    require_token_scope(request, PEOPLE_ONLY)
    return waiver
