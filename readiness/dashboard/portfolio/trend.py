"""The portfolio's readiness trend: the share of projects go at the end of each of the last weeks.

Each project is judged by its latest stored scorecard as of each week's end, which storing a scorecard
records per project and week (``readiness.scoring.standings.WeeklyDecision``) from the week of its
first scorecard to the week of its latest; in the weeks after that, its latest decision (its
``Standing``) still holds. The current week's figure is the projects' latest decision.

The page counts this in SQL (``trend_counts``: one query of a few grouped rows whatever the portfolio's
size); the exports' rows carry their weekly decisions (``weekly_decisions_of``) and
``readiness_trend`` counts the same over them, which the tests hold the SQL to.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from django.db.models import Count, Q, QuerySet, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from readiness.projects.vocabulary import Stage
from readiness.scoring.models import Decision, Standing, WeeklyDecision, WeeklyTally

if TYPE_CHECKING:
    from readiness.dashboard.portfolio.selectors import PortfolioRow
    from readiness.projects.models import Project

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


def weekly_decisions_of(projects: QuerySet[Project], weeks: list[date]) -> dict[int, dict[date, str]]:
    """Per project id, its stored decision at the end of each of the ``weeks`` it has one for: one
    query, at most a row per project and week."""
    stored: dict[int, dict[date, str]] = {}
    for project_id, week, decision in WeeklyDecision.objects.filter(
        project__in=projects.values("pk"), week__in=weeks
    ).values_list("project_id", "week", "decision"):
        stored.setdefault(project_id, {})[week] = decision
    return stored


def decision_as_of(
    week: date, *, stored: dict[date, str], latest_week: date | None, latest: str | None
) -> str | None:
    """A project's decision at the end of a finished ``week``: the stored one, else its latest decision
    when its latest scorecard came before that week (no later scorecard has changed it), else none."""
    if week in stored:
        return stored[week]
    return latest if latest_week is not None and latest_week < week else None


def trend_counts(
    projects: QuerySet[Project],
    *,
    now: datetime,
    go_now: int,
    evaluated_now: int,
    weeks: int = TREND_WEEKS,
    tallied: bool = False,
) -> list[TrendWeek]:
    """``readiness_trend`` of the ``projects`` in SQL. The current week is their latest decisions,
    which the caller has counted (``go_now`` of ``evaluated_now``); ``[]`` for no projects.

    ``tallied``: the ``projects`` are every project but the retired ones, so the stored weeks are the
    tally over every project (``WeeklyTally``) less the retired projects' weeks."""
    starts = [start.date() for start in trend_week_starts(now=now, weeks=weeks)]
    finished = starts[:-1]
    counted: Counter[date] = Counter()
    go: Counter[date] = Counter()
    ids = projects.values("pk")
    # One query: the stored weeks, and (``holds``) the projects whose latest scorecard came before a
    # week, which count their latest decision in it; the weeks before the trend's first all count
    # alike, so they fold into one group.
    before_first = finished[0] - timedelta(weeks=1) if finished else starts[-1]
    stored = [
        WeeklyDecision.objects.filter(
            Q(project__stage=Stage.RETIRED) if tallied else Q(project__in=ids), week__in=finished
        )
        .values("week", "decision")
        .annotate(n=Count("*") * Value(-1 if tallied else 1), holds=Value(False))
        .values_list("week", "decision", "n", "holds")
    ]
    if tallied:
        stored.append(
            WeeklyTally.objects.filter(week__in=finished)
            .annotate(holds=Value(False))
            .values_list("week", "decision", "projects", "holds")
        )
    latest = (
        Standing.objects.filter(project__in=ids, week__lt=finished[-1] if finished else before_first)
        .values("decision", since=Greatest("week", Value(before_first)))
        .annotate(n=Count("*"), holds=Value(True))
        .values_list("since", "decision", "n", "holds")
    )
    for week, decision, n, holds in stored[0].union(*stored[1:], latest, all=True):
        counts = [w for w in finished if _as_date(week) < w] if holds else [_as_date(week)]
        for counted_week in counts:
            counted[counted_week] += n
            go[counted_week] += n if decision == Decision.GO else 0
    counted[starts[-1]], go[starts[-1]] = evaluated_now, go_now
    return [
        TrendWeek(start=start, projects=counted[start], go=go[start], current=start == starts[-1])
        for start in starts
    ]


def _as_date(value: date | str) -> date:
    # SQLite hands a date computed in SQL (GREATEST) back as its ISO text.
    return value if isinstance(value, date) else date.fromisoformat(value)


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
