"""What the portfolio shows one reader for one query string: the filter form, and either the page's
figures counted in SQL (``portfolio_page``) or every matching row (``portfolio_view``: the funnel's input
and, narrowed by the stage filter, the matrix the exports write). Both read the filters here, so an
export never disagrees with the page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import Exists, OuterRef, QuerySet

from readiness.dashboard.portfolio import selectors
from readiness.dashboard.portfolio.figures import PortfolioFigures, portfolio_figures
from readiness.dashboard.portfolio.forms import PortfolioFilterForm
from readiness.dashboard.portfolio.selectors import TREND_WEEKS, PortfolioFilters, PortfolioRow
from readiness.projects.models import Project, Team

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
    from django.http import QueryDict


@dataclass(frozen=True)
class PortfolioQuery:
    """The projects a reader may see and the filters a query string asks of them."""

    visible: QuerySet[Project]
    form: PortfolioFilterForm
    filters: PortfolioFilters
    ignored: list[str]


def portfolio_query(*, user: AbstractBaseUser | AnonymousUser, data: QueryDict) -> PortfolioQuery:
    # One visible_to for the whole page: it costs a query (the leadership check) each time it is called.
    visible = Project.objects.visible_to(user)
    # A team is listed when any of its projects is visible: an EXISTS per team stops at its first
    # project, where joining every project and de-duplicating read them all (16 ms at 10,000).
    teams = list(
        Team.objects.filter(Exists(visible.filter(team=OuterRef("pk"))))
        .order_by("name")
        .values_list("slug", "name")
    )
    form = PortfolioFilterForm(data, teams=teams)
    filters, ignored = form.filters()
    return PortfolioQuery(visible=visible, form=form, filters=filters, ignored=ignored)


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
    query = portfolio_query(user=user, data=data)
    rows = selectors.portfolio_rows(
        projects=query.visible, filters=query.filters, now=now, trend_weeks=trend_weeks
    )
    return PortfolioView(
        form=query.form,
        filters=query.filters,
        ignored=query.ignored,
        rows=rows,
        shown=selectors.in_stage(rows, query.filters.stage),
    )


def portfolio_page(
    *, user: AbstractBaseUser | AnonymousUser, data: QueryDict, now: datetime
) -> tuple[PortfolioQuery, PortfolioFigures]:
    query = portfolio_query(user=user, data=data)
    return query, portfolio_figures(projects=query.visible, filters=query.filters, now=now)
