"""The portfolio's readiness trend: share of projects go per week, each project judged by its latest
scorecard as of each week's end, checked against a hand-computed case."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import pytest
import time_machine

from readiness.dashboard.portfolio.selectors import PortfolioFilters, portfolio_rows
from readiness.dashboard.portfolio.trend import TREND_WEEKS, TrendWeek, readiness_trend, trend_week_starts
from readiness.projects.models import Project
from readiness.scoring.models import Scorecard
from tests.conftest import Cast
from tests.dashboard.test_pages import count_queries
from tests.factories import ProjectFactory, TeamFactory

# A Wednesday: the current week started on Monday 16 November.
NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    """Every test here lives wholly at NOW: its projects, scorecards, logins and pages alike, so the
    trend's weeks never depend on the day the suite runs."""
    with time_machine.travel(NOW, tick=False):
        yield


def stored(project: Project, decision: str, at: datetime) -> None:
    Scorecard.objects.create(
        project=project,
        target="production",
        decision=decision,
        computed_at=at,
        digest=f"{decision}{at.isoformat()}",
        payload={"decision": decision, "dimensions": {}, "criteria": [], "blockers": []},
    )


@pytest.fixture
def history(cast: Cast) -> dict[str, Project]:
    team = cast.project.team
    projects = {name: ProjectFactory(slug=name, team=team) for name in ("a", "b", "c", "d", "e")}
    # a: no-go in the week of 2 Nov, go from the week of 9 Nov.
    stored(projects["a"], "no_go", datetime(2026, 11, 3, 10, tzinfo=UTC))
    stored(projects["a"], "go", datetime(2026, 11, 10, 10, tzinfo=UTC))
    # b: go from the week of 26 Oct, no-go since yesterday.
    stored(projects["b"], "go", datetime(2026, 10, 27, 10, tzinfo=UTC))
    stored(projects["b"], "no_go", datetime(2026, 11, 17, 10, tzinfo=UTC))
    # c: never evaluated, so never counted.
    # d: go since long before the 12 weeks.
    stored(projects["d"], "go", datetime(2026, 8, 1, tzinfo=UTC))
    # e: go at the very first instant of the week of 9 Nov: not yet at the end of the week of 2 Nov.
    stored(projects["e"], "go", datetime(2026, 11, 9, 0, 0, tzinfo=UTC))
    return projects


def test_weeks_start_on_mondays_and_end_with_the_current_one() -> None:
    starts = trend_week_starts(now=NOW)
    assert len(starts) == TREND_WEEKS
    assert starts[0] == datetime(2026, 8, 31, tzinfo=UTC)
    assert starts[-1] == datetime(2026, 11, 16, tzinfo=UTC)
    assert {start.weekday() for start in starts} == {0}


def trend(projects: list[Project], **kwargs: int) -> list[TrendWeek]:
    queryset = Project.objects.filter(pk__in=[project.pk for project in projects])
    return readiness_trend(portfolio_rows(projects=queryset, filters=PortfolioFilters(), now=NOW, **kwargs))


def test_trend_matches_the_hand_computed_shares(history: dict[str, Project]) -> None:
    weeks = trend(list(history.values()))
    by_week = {week.start: (week.projects, week.go) for week in weeks}
    # Until 19 Oct only d has a scorecard (go).
    assert all(by_week[date(2026, month, day)] == (1, 1) for month, day in ((8, 31), (9, 28), (10, 19)))
    assert by_week[date(2026, 10, 26)] == (2, 2)  # d, b
    assert by_week[date(2026, 11, 2)] == (3, 2)  # d, b go; a no-go; e not yet
    assert by_week[date(2026, 11, 9)] == (4, 4)  # a turned go, e arrived
    assert by_week[date(2026, 11, 16)] == (4, 3)  # b turned no-go
    assert [week.percent for week in weeks[-4:]] == [100, 67, 100, 75]
    assert [week.current for week in weeks] == [False] * (TREND_WEEKS - 1) + [True]


def test_trend_counts_only_the_given_projects(history: dict[str, Project]) -> None:
    weeks = trend([history["a"]])
    assert [(week.projects, week.go) for week in weeks[-3:]] == [(1, 0), (1, 1), (1, 1)]
    assert weeks[0].projects == 0 and weeks[0].share is None and weeks[0].percent is None


def test_an_empty_portfolio_has_no_trend(db: None) -> None:
    assert trend([]) == []


def test_rows_can_leave_the_trend_out(history: dict[str, Project]) -> None:
    rows = portfolio_rows(projects=Project.objects.all(), filters=PortfolioFilters(), now=NOW, trend_weeks=0)
    assert all(row.weekly_decisions == () for row in rows)
    assert readiness_trend(rows) == []


def test_portfolio_draws_the_trend_with_a_table_fallback(
    history: dict[str, Project], cast: Cast, as_user: Callable
) -> None:
    content = as_user(cast.leader).get("/").content.decode()
    assert 'aria-labelledby="trend-title trend-desc"' in content
    assert "From 100% go in the week of 31 Aug to 75% in the week of 16 Nov." in content
    assert "<summary>The trend as a table</summary>" in content
    assert '<tr><th scope="row">9 Nov 2026</th><td>4</td><td>4</td><td>100%</td></tr>' in content
    assert "16 Nov 2026 (so far)" in content
    # The bars are drawn in the page's own markup: no script builds them.
    assert 'height="100.5"' in content  # 75% of the 134-unit plot


def test_trend_follows_the_portfolio_filters(
    history: dict[str, Project], cast: Cast, as_user: Callable
) -> None:
    other = ProjectFactory(slug="elsewhere", team=TeamFactory(slug="search", name="Search"))
    stored(other, "no_go", datetime(2026, 11, 1, tzinfo=UTC))
    content = as_user(cast.leader).get("/?team=search").content.decode()
    assert "From 0% go in the week of 26 Oct to 0% in the week of 16 Nov." in content


def test_retired_projects_leave_the_trend_like_the_matrix(
    history: dict[str, Project], cast: Cast, as_user: Callable
) -> None:
    Project.objects.filter(slug="b").update(stage="retired")
    content = as_user(cast.leader).get("/").content.decode()
    assert "(3 of 3)" in content  # a, d, e are go this week; b is retired, c never evaluated


def test_portfolio_without_scorecards_says_there_is_no_trend(cast: Cast, as_user: Callable) -> None:
    content = as_user(cast.leader).get("/").content.decode()
    assert "None of these projects has a scorecard in the last 12 weeks." in content


def test_htmx_results_carry_the_trend(history: dict[str, Project], cast: Cast, as_user: Callable) -> None:
    response = as_user(cast.leader).get("/?team=fraud", HTTP_HX_REQUEST="true")
    assert "Readiness trend" in response.content.decode()
    assert "<html" not in response.content.decode()


def test_trend_costs_no_query_of_its_own(
    cast: Cast, as_user: Callable, django_assert_num_queries: Callable
) -> None:
    team = cast.project.team
    for n in range(3):
        stored(ProjectFactory(team=team), "go", datetime(2026, 11, 1 + n, tzinfo=UTC))
    with_trend = portfolio_rows(projects=Project.objects.all(), filters=PortfolioFilters(), now=NOW)
    with django_assert_num_queries(3):  # projects (with the weekly decisions), scorecards, stage history
        portfolio_rows(projects=Project.objects.all(), filters=PortfolioFilters(), now=NOW)
    with django_assert_num_queries(0):
        assert readiness_trend(with_trend)[-1].go == 3
    client = as_user(cast.leader)
    few = count_queries(client, "/")
    for n in range(30):
        project = ProjectFactory(team=team)
        for week in range(4):
            stored(project, "go" if n % 2 else "no_go", datetime(2026, 10, 5 + 7 * week, tzinfo=UTC))
    assert count_queries(client, "/") == few
