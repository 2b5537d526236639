"""The pages (PRODUCT.md §5): thin views that check access, call a selector and render.

The htmx partials are named blocks of the page templates. A page ``{% extends layout %}``: the full
layout for a normal request, a layout holding only the one block for an htmx request, so a partial is
the page's own markup, never a copy of it, and every page still works without JavaScript.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from readiness.dashboard import selectors
from readiness.dashboard.audit_log import may_read_audit
from readiness.dashboard.charts import scorecard_charts
from readiness.dashboard.controls import Failure, dimension_panels
from readiness.dashboard.display import DIMENSION_LABELS
from readiness.dashboard.portfolio import portfolio_view
from readiness.dashboard.scorecards import scorecard_page
from readiness.projects.models import OWNER_FIELDS, Project
from readiness.projects.vocabulary import Stage

FULL_LAYOUT = "dashboard/base.html"
SCORECARD_LIVE_LAYOUT = "dashboard/partial_scorecard_live.html"
# How often a page open on a wall screen refreshes its data (while the tab is visible; dashboard.js).
POLL_SECONDS = 30


def _layout(request: HttpRequest, partial: str) -> str:
    # htmx asks for the full page when it restores history it has no snapshot of: give it the page.
    if request.headers.get("HX-Request") and not request.headers.get("HX-History-Restore-Request"):
        return partial
    return FULL_LAYOUT


@require_GET
@login_required
def portfolio(request: HttpRequest) -> TemplateResponse:
    view = portfolio_view(user=request.user, data=request.GET, now=timezone.now())
    shown = view.shown
    context = {
        "layout": _layout(request, "dashboard/partial_results.html"),
        "form": view.form,
        "filters": view.filters,
        "ignored": view.ignored,
        "rows": shown,
        "kpis": selectors.portfolio_kpis(shown),
        "funnel": selectors.portfolio_funnel(view.rows),
        "blocking_dimensions": selectors.blocking_dimensions(shown),
        "top_blockers": selectors.with_titles(selectors.top_blockers(shown)),
        "dimension_labels": DIMENSION_LABELS,
        "stuck_after_days": settings.READINESS_STUCK_AFTER_DAYS,
        "poll_seconds": POLL_SECONDS,
    }
    response = TemplateResponse(request, "dashboard/portfolio.html", context)
    # One URL answers with a page or a partial: caches must key on the header that chooses.
    patch_vary_headers(response, ["HX-Request"])
    return response


def readable_project(request: HttpRequest, slug: str) -> Project:
    """The project with its team and responsible people, if the reader may see it. Outside
    ``visible_to`` the project does not exist for this person (PRODUCT.md §2): 404, not 403."""
    projects = Project.objects.visible_to(request.user).select_related("team", *OWNER_FIELDS.values())
    return get_object_or_404(projects, slug=slug)


def scorecard_context(
    request: HttpRequest,
    project: Project,
    *,
    layout: str = FULL_LAYOUT,
    failure: Failure | None = None,
    notice: str = "",
    notice_level: str = "success",
    affected: str | None = None,
) -> dict[str, Any]:
    """Everything the scorecard page shows; the action views render the same page (or its parts)
    with the refused form (``failure``) or the outcome (``notice``) of what was just done."""
    now = timezone.now()
    criteria = list(project.criteria.order_by("position", "key"))
    page = scorecard_page(project=project, criteria=criteria)
    # Admins and the team: they request waivers and read the audit log (one membership query).
    member = may_read_audit(project=project, user=request.user)
    panels = dimension_panels(
        page=page,
        project=project,
        criteria=criteria,
        user=request.user,
        now=now,
        today=timezone.localdate(now),
        failure=failure,
        member=member,
    )
    lines = [line for column in page.columns for line in (*column.criteria, *column.ml_tests)]
    return {
        "layout": layout,
        "project": project,
        "page": page,
        "panels": panels,
        "member": member,
        "affected": next((panel for panel in panels if panel.key == affected), None),
        "charts": scorecard_charts(
            project=project, criteria=criteria, lines=lines, scorecard_at=page.scorecard.computed_at, now=now
        ),
        "notice": notice,
        "notice_level": notice_level,
        "poll_seconds": POLL_SECONDS,
        # Where the pulled numbers come from and whether they still come (PRODUCT.md §8): a failing
        # source is shown here, not as an error of the criteria, whose data goes stale then missing.
        "source_lines": [s.status_line(now) for s in project.metric_sources.order_by("name")],
        # A launch date in the past while not yet in production is worth a flag in the header.
        "overdue": project.target_date is not None
        and project.target_date < timezone.localdate(now)
        and project.stage not in (Stage.PRODUCTION, Stage.RETIRED),
    }


@require_GET
@login_required
def scorecard(request: HttpRequest, slug: str) -> TemplateResponse:
    project = readable_project(request, slug)
    # An htmx request is the page's 30-second poll: only its data part, the "live" block.
    context = scorecard_context(request, project, layout=_layout(request, SCORECARD_LIVE_LAYOUT))
    response = TemplateResponse(request, "dashboard/scorecard.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response
