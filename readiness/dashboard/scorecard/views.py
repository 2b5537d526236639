"""The scorecard page (PRODUCT.md §5): a thin view that checks access, calls the selectors and renders;
its actions (actions.py) render the same page with ``scorecard_context``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from readiness.dashboard.common.layouts import FULL_LAYOUT, POLL_SECONDS, layout
from readiness.dashboard.common.projects import readable_project
from readiness.dashboard.review.audit import may_read_audit
from readiness.dashboard.scorecard.charts import decision_timeline, scorecard_charts
from readiness.dashboard.scorecard.controls import Failure, dimension_panels
from readiness.dashboard.scorecard.scorecards import scorecard_page
from readiness.projects.models import Project
from readiness.projects.vocabulary import Stage

SCORECARD_LIVE_LAYOUT = "dashboard/partial_scorecard_live.html"


def scorecard_context(
    request: HttpRequest,
    project: Project,
    *,
    layout: str = FULL_LAYOUT,
    failure: Failure | None = None,
    notice: str = "",
    notice_level: str = "success",
    affected: str | None = None,
    charts: bool = True,
) -> dict[str, Any]:
    """Everything the scorecard page shows; the action views render the same page (or its parts)
    with the refused form (``failure``) or the outcome (``notice``) of what was just done. Without
    ``charts`` the metric, drift and health charts are not read at all: an action's htmx answer
    swaps the panels it changed (a dimension, the banner, the decision history) and no chart."""
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
        )
        if charts
        else None,
        "timeline": decision_timeline(project=project),
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
    context = scorecard_context(request, project, layout=layout(request, SCORECARD_LIVE_LAYOUT))
    response = TemplateResponse(request, "dashboard/scorecard.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response
