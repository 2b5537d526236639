"""The portfolio page (PRODUCT.md §5): a thin view that checks access, calls the selectors and renders."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from readiness.dashboard.common.display import DIMENSION_LABELS
from readiness.dashboard.common.layouts import POLL_SECONDS, layout
from readiness.dashboard.common.paging import pick_page
from readiness.dashboard.portfolio import selectors
from readiness.dashboard.portfolio.page import portfolio_page

# Rows of the readiness matrix a page shows. The KPIs, funnel, trend, blockers and the exports cover
# every matching project; only the matrix, the part that grows with the portfolio, is paged, so a
# portfolio of thousands renders as fast as one of fifty.
MATRIX_PAGE_SIZE = 50


@require_GET
@login_required
def portfolio(request: HttpRequest) -> TemplateResponse:
    query, figures = portfolio_page(user=request.user, data=request.GET, now=timezone.now())
    matrix, page_message = pick_page(figures.rows, per_page=MATRIX_PAGE_SIZE, raw=request.GET.get("page"))
    # The filters without the page: what the exports and the matrix's page links carry.
    filter_query = request.GET.copy()
    filter_query.pop("page", None)
    context = {
        "layout": layout(request, "dashboard/partial_results.html"),
        "form": query.form,
        "filters": query.filters,
        "ignored": [*query.ignored, page_message] if page_message else query.ignored,
        "rows": figures.rows,
        "matrix": matrix,
        "filter_query": filter_query.urlencode(),
        "kpis": figures.kpis,
        "funnel": figures.funnel,
        "trend": figures.trend,
        "blocking_dimensions": figures.blocking_dimensions,
        "top_blockers": selectors.with_titles(figures.top_blockers),
        "dimension_labels": DIMENSION_LABELS,
        "stuck_after_days": settings.READINESS_STUCK_AFTER_DAYS,
        "poll_seconds": POLL_SECONDS,
    }
    response = TemplateResponse(request, "dashboard/portfolio.html", context)
    # One URL answers with a page or a partial: caches must key on the header that chooses.
    patch_vary_headers(response, ["HX-Request"])
    return response
