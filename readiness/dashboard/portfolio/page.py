"""What the portfolio shows one reader for one query string: the filter form, every matching row (the
funnel's input) and the rows left after the stage filter (the matrix). The page and the matrix export
both read it here, so an export never disagrees with the page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from readiness.dashboard.portfolio import selectors
from readiness.dashboard.portfolio.forms import PortfolioFilterForm
from readiness.dashboard.portfolio.selectors import TREND_WEEKS, PortfolioFilters, PortfolioRow
from readiness.projects.models import Project, Team

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
    from django.http import QueryDict


@dataclass(frozen=True)
class PortfolioView:
    form: PortfolioFilterForm
    filters: PortfolioFilters
    ignored: list[str]
    rows: list[PortfolioRow]  # every stage: the funnel is about stages
    shown: list[PortfolioRow]  # narrowed by the stage filter: the matrix, the KPIs, the blockers


def portfolio_view(
    *,
    user: AbstractBaseUser | AnonymousUser,
    data: QueryDict,
    now: datetime,
    trend_weeks: int = TREND_WEEKS,
) -> PortfolioView:
    # One visible_to for the whole page: it costs a query (the leadership check) each time it is called.
    visible = Project.objects.visible_to(user)
    teams = list(
        Team.objects.filter(projects__in=visible.values("pk"))
        .distinct()
        .order_by("name")
        .values_list("slug", "name")
    )
    form = PortfolioFilterForm(data, teams=teams)
    filters, ignored = form.filters()
    rows = selectors.portfolio_rows(projects=visible, filters=filters, now=now, trend_weeks=trend_weeks)
    return PortfolioView(
        form=form, filters=filters, ignored=ignored, rows=rows, shown=selectors.in_stage(rows, filters.stage)
    )
