"""The review pages (PRODUCT.md §5): a project's scorecard history, the printable go/no-go report, and
the portfolio matrix exported as CSV or JSON. Thin views: check access, call a selector, render.

Access is the scorecard page's (PRODUCT.md §2): login first, then a project the reader may not see
does not exist for them (404); leadership reads everything. Read-only, so GET only (405 otherwise).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from readiness.dashboard.common.layouts import FULL_LAYOUT
from readiness.dashboard.common.projects import readable_project
from readiness.dashboard.portfolio.export import export_filename, matrix_csv, matrix_json
from readiness.dashboard.portfolio.page import portfolio_view
from readiness.dashboard.review.audit import audit_page, may_read_audit
from readiness.dashboard.review.history import history_page
from readiness.dashboard.review.report import report_page


@require_GET
@login_required
def history(request: HttpRequest, slug: str) -> TemplateResponse:
    project = readable_project(request, slug, owners=False)
    return TemplateResponse(
        request,
        "dashboard/history.html",
        {
            "layout": FULL_LAYOUT,
            "project": project,
            "history": history_page(project=project, page=request.GET.get("page")),
        },
    )


@require_GET
@login_required
def audit(request: HttpRequest, slug: str) -> TemplateResponse:
    project = readable_project(request, slug, owners=False)
    if not may_read_audit(project=project, user=request.user):
        # The reader may see the project (leadership): it exists for them, its audit log is not theirs.
        raise PermissionDenied("the audit log is for the project's team and admins")
    return TemplateResponse(
        request,
        "dashboard/audit.html",
        {
            "layout": FULL_LAYOUT,
            "project": project,
            "audit": audit_page(project=project, page=request.GET.get("page")),
        },
    )


@require_GET
@login_required
def report(request: HttpRequest, slug: str) -> TemplateResponse:
    project = readable_project(request, slug)
    now = timezone.now()
    return TemplateResponse(
        request,
        "dashboard/report.html",
        {"project": project, "report": report_page(project=project, now=now), "now": now},
    )


def _attachment(response: HttpResponse, filename: str) -> HttpResponse:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # The rows depend on who asks: never let a shared cache hand one reader's export to another.
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@login_required
def portfolio_csv(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    # No trend columns: an export is the matrix, and they are most of the projects query's work.
    shown = portfolio_view(user=request.user, data=request.GET, now=now, trend_weeks=0)
    # A byte-order mark, so a spreadsheet opened by double-click reads the names as UTF-8.
    response = HttpResponse("\ufeff" + matrix_csv(shown.shown), content_type="text/csv; charset=utf-8")
    return _attachment(response, export_filename(extension="csv", now=now))


@require_GET
@login_required
def portfolio_json(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    shown = portfolio_view(user=request.user, data=request.GET, now=now, trend_weeks=0)
    response = JsonResponse(matrix_json(shown=shown, now=now), json_dumps_params={"ensure_ascii": False})
    return _attachment(response, export_filename(extension="json", now=now))
