"""``{% portfolio_trend weeks %}``: the readiness trend a portfolio page shows, as a chart with a table.

A tag so the chart goes wherever the portfolio's figures go (the full page, its htmx partial, a wall
screen's poll) with the same markup. It costs no query: the weeks are counted with the page's figures
(``figures.portfolio_figures``), over the projects the reader may see.
"""

from __future__ import annotations

from typing import Any

from django import template

from readiness.dashboard.common.svg import share_bars
from readiness.dashboard.portfolio.trend import TREND_WEEKS, TrendWeek

register = template.Library()


@register.inclusion_tag("dashboard/_trend.html")
def portfolio_trend(weeks: list[TrendWeek]) -> dict[str, Any]:
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
