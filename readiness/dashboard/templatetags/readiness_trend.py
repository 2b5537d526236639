"""``{% portfolio_trend rows %}``: the readiness trend of the rows a portfolio page shows.

A tag so the chart goes wherever the matrix's rows go (the full page, its htmx partial, a wall
screen's poll) without each view learning about it. It costs no query: the rows carry their weekly
decisions, read with the projects (``selectors.portfolio_rows``), and the view already narrowed them
to those the reader may see.
"""

from __future__ import annotations

from typing import Any

from django import template

from readiness.dashboard.common.svg import share_bars
from readiness.dashboard.portfolio.selectors import PortfolioRow
from readiness.dashboard.portfolio.trend import TREND_WEEKS, readiness_trend

register = template.Library()


@register.inclusion_tag("dashboard/_trend.html")
def portfolio_trend(rows: list[PortfolioRow]) -> dict[str, Any]:
    weeks = readiness_trend(rows)
    chart = share_bars(shares=[week.share for week in weeks], labels=[week.label for week in weeks])
    measured = [week for week in weeks if week.percent is not None]
    return {
        "weeks": weeks,
        "weeks_shown": TREND_WEEKS,
        "chart": chart,
        "bars": list(zip(chart.bars, weeks, strict=True)),
        "first": measured[0] if measured else None,
        "last": measured[-1] if measured else None,
    }
