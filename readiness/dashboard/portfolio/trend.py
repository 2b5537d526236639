"""The portfolio's readiness trend: the share of projects go at the end of each of the last weeks.

Each project is judged by its latest stored scorecard as of each week's end. The finished weeks are
read with the portfolio's projects (``weekly_decision_columns``, annotated on the same query); the
current week's figure is the projects' latest decision, which that query reads anyway. The trend
itself is then a pure function of the rows (``readiness_trend``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from readiness.scoring.models import Scorecard

if TYPE_CHECKING:
    from readiness.dashboard.portfolio.selectors import PortfolioRow

TREND_WEEKS = 12  # about a quarter


@dataclass(frozen=True)
class TrendWeek:
    """The portfolio as of the end of one week (Monday 00:00 to the next Monday, in TIME_ZONE)."""

    start: date
    projects: int  # projects that had a scorecard by the week's end: the others had no decision yet
    go: int
    current: bool = False  # the week now running: its figure is "so far"

    @property
    def share(self) -> float | None:
        return self.go / self.projects if self.projects else None

    @property
    def percent(self) -> int | None:
        return round(100 * self.go / self.projects) if self.projects else None

    @property
    def label(self) -> str:
        return f"{self.start:%-d %b}"


def trend_week_starts(*, now: datetime, weeks: int = TREND_WEEKS) -> list[datetime]:
    """The starts (Monday 00:00, aware) of the last ``weeks`` weeks, oldest first, the current one last."""
    today = timezone.localtime(now).date()
    monday = timezone.make_aware(datetime.combine(today - timedelta(days=today.weekday()), time.min))
    return [monday - timedelta(weeks=back) for back in range(weeks - 1, -1, -1)]


def weekly_decision_columns(starts: list[datetime]) -> dict[str, Subquery]:
    """Per week, the decision of the project's latest scorecard before the next week starts.

    A correlated ``LIMIT 1`` on the (project, -computed_at) index, like the latest scorecard itself:
    the cost is one index probe per project and week however long the history is, where reading the
    scorecards (a daily snapshot per project at least) would grow without bound."""
    columns = {}
    for index, start in enumerate(starts):
        as_of = Scorecard.objects.latest_for(OuterRef("pk")).filter(
            computed_at__lt=start + timedelta(weeks=1)
        )
        columns[f"week_{index}"] = Subquery(as_of.values("decision")[:1])
    return columns


def readiness_trend(rows: list[PortfolioRow]) -> list[TrendWeek]:
    """Share of the ``rows`` go at the end of each week, each project judged by its latest scorecard as
    of then; a project without a scorecard by then is left out of that week."""
    if not rows or not rows[0].weekly_decisions:
        return []
    starts = [start for start, _ in rows[0].weekly_decisions]
    counted: Counter[date] = Counter()
    go: Counter[date] = Counter()
    for row in rows:
        for start, decision in row.weekly_decisions:
            if decision is not None:
                counted[start] += 1
                go[start] += decision == "go"
    return [
        TrendWeek(start=start, projects=counted[start], go=go[start], current=start == starts[-1])
        for start in starts
    ]
