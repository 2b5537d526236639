"""The portfolio page's figures counted in SQL (figures.py) equal the pure functions over every row
(selectors.py, the exports' path) on a mixed portfolio, under every kind of filter."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from readiness.dashboard.portfolio import selectors
from readiness.dashboard.portfolio.figures import STUCK_NAMED, portfolio_figures
from readiness.dashboard.portfolio.selectors import NAMED_PER_BLOCKER, PortfolioFilters, portfolio_rows
from readiness.dashboard.portfolio.trend import readiness_trend
from readiness.projects.models import Project, StageChange, Team
from readiness.projects.services import project_set_stage
from readiness.scoring.models import Scorecard
from tests.factories import ProjectFactory, TeamFactory, UserFactory
from tests.plans import plan_without_table_scans

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
STAGES = ["prototype", "pilot", "production", "retired"]
BLOCKERS = [
    {"dimension": "security", "criterion": "pen_test", "status": "fail"},
    {"dimension": "security", "criterion": None, "status": "signoff_missing"},
    {"dimension": "product", "criterion": "user_research", "status": "missing"},
    {"dimension": "engineering", "criterion": "load_test", "status": "fail"},
    {"dimension": None, "criterion": None, "status": "prohibited"},
]
FILTERS = [
    PortfolioFilters(),
    PortfolioFilters(stage="pilot"),
    PortfolioFilters(stage="retired"),
    PortfolioFilters(team="search"),
    PortfolioFilters(decision="go"),
    PortfolioFilters(decision="none"),
    PortfolioFilters(risk_tier="high", q="Project 1"),
]


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def mixed(db: None) -> None:
    rng = random.Random(7)
    teams = [TeamFactory(slug="search", name="Search"), TeamFactory(slug="fraud", name="Fraud")]
    for n in range(40):
        project = ProjectFactory(
            name=f"Project {n} {'ABC'[n % 3]}",
            team=teams[n % 2],
            stage=STAGES[n % 4],
            risk_tier=["high", "limited", "minimal"][n % 3],
            stage_changed_at=NOW - timedelta(days=rng.randint(0, 120), hours=rng.randint(0, 23)),
        )
        if n % 5 == 0:
            StageChange.objects.create(project=project, from_stage="pilot", to_stage="production")
        for _ in range(n % 4):  # some projects are never evaluated
            decision = rng.choice(["go", "no_go"])
            blockers = rng.sample(BLOCKERS, rng.randint(1, 3)) if decision == "no_go" else []
            at = NOW - timedelta(days=rng.randint(0, 110), hours=rng.randint(0, 23))
            Scorecard.objects.create(
                project=project,
                target="production",
                decision=decision,
                computed_at=at,
                digest=at.isoformat(),
                payload={"dimensions": {}, "criteria": [], "blockers": blockers},
            )


@pytest.mark.parametrize("filters", FILTERS, ids=repr)
def test_the_sql_figures_equal_the_python_ones(mixed: None, filters: PortfolioFilters) -> None:
    assert_figures_equal(Project.objects.all(), filters)


def assert_figures_equal(projects: Any, filters: PortfolioFilters) -> None:
    rows = portfolio_rows(projects=projects, filters=filters, now=NOW)
    shown = selectors.in_stage(rows, filters.stage)
    figures = portfolio_figures(projects=projects, filters=filters, now=NOW)

    assert figures.kpis == selectors.portfolio_kpis(shown)
    assert [row.slug for row in figures.rows] == [row.slug for row in shown]
    assert [row.slug for row in figures.rows[3:7]] == [row.slug for row in shown[3:7]]
    assert figures.blocking_dimensions == selectors.blocking_dimensions(shown)
    assert figures.trend == readiness_trend(shown)

    funnel = selectors.portfolio_funnel(rows)
    assert figures.funnel.retired == funnel.retired
    for sql, python in zip(figures.funnel.stages, funnel.stages, strict=True):
        assert _stage(sql) == _stage(python)
        assert [row.slug for row in sql.stuck] == [row.slug for row in python.stuck[:STUCK_NAMED]]
        assert sql.stuck_total == len(python.stuck)

    top = selectors.top_blockers(shown)
    assert [_blocker(b) for b in figures.top_blockers] == [_blocker(b) for b in top]


def scorecard(project: Project, decision: str, at: datetime, blockers: list[dict]) -> Scorecard:
    return Scorecard.objects.create(
        project=project,
        target="production",
        decision=decision,
        computed_at=at,
        digest=f"{decision}-{at.isoformat()}",
        payload={"dimensions": {}, "criteria": [], "blockers": blockers},
    )


def test_the_unfiltered_figures_follow_every_write_that_moves_a_tally(mixed: None) -> None:
    # The unfiltered page of a reader who sees everything counts from the tallies (less the retired
    # projects' rows); after each kind of write its figures still equal those over every row.
    every, retired = PortfolioFilters(), PortfolioFilters(stage="retired")
    projects = list(Project.objects.order_by("pk"))
    moves = [
        lambda: scorecard(projects[1], "no_go", NOW - timedelta(hours=1), BLOCKERS[:3]),  # new
        lambda: scorecard(projects[2], "go", NOW - timedelta(days=50), []),  # backdated
        lambda: scorecard(projects[5], "go", NOW, []),  # unblocks it
        lambda: project_set_stage(project=projects[1], stage="retired", by=None),  # leaves the page
        lambda: project_set_stage(project=projects[3], stage="pilot", by=None),  # back from retired
        lambda: Project.objects.filter(pk=projects[6].pk).update(team=projects[7].team, risk_tier="high"),
        lambda: projects[9].delete(),
        lambda: Project.objects.filter(pk__in=[projects[10].pk, projects[11].pk]).delete(),
    ]
    for move in moves:
        move()
        assert_figures_equal(Project.objects.all(), every)
        assert_figures_equal(Project.objects.all(), retired)
    with pytest.raises(RuntimeError), transaction.atomic():
        scorecard(projects[13], "no_go", NOW, BLOCKERS)
        raise RuntimeError("rolled back")
    assert_figures_equal(Project.objects.all(), every)


def test_a_reader_who_sees_some_projects_gets_their_figures(mixed: None) -> None:
    member = UserFactory(username="searcher")
    Team.objects.get(slug="search").members.add(member)
    visible = Project.objects.visible_to(member)
    assert_figures_equal(visible, PortfolioFilters())
    figures = portfolio_figures(projects=visible, filters=PortfolioFilters(), now=NOW)
    assert (
        figures.kpis.projects == Project.objects.filter(team__slug="search").exclude(stage="retired").count()
    )
    everyone = portfolio_figures(projects=Project.objects.all(), filters=PortfolioFilters(), now=NOW)
    assert sum(b.blocked for b in figures.top_blockers) < sum(b.blocked for b in everyone.top_blockers)


def _stage(stage: Any) -> tuple:
    return (stage.stage, stage.count, stage.reached, stage.conversion, stage.median_days)


def _blocker(blocker: Any) -> tuple:
    named = [row.slug for row in blocker.projects[:NAMED_PER_BLOCKER]]
    return (blocker.dimension, blocker.key, blocker.is_criterion, blocker.blocked, named)


def test_blockers_of_projects_beyond_the_first_by_name_are_named_too(
    mixed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the first two projects by name are looked at first: every top blocker needs the fallback.
    monkeypatch.setattr("readiness.dashboard.portfolio.figures.NAMED_CANDIDATES", 2)
    rows = selectors.in_stage(
        portfolio_rows(projects=Project.objects.all(), filters=PortfolioFilters(), now=NOW), ""
    )
    figures = portfolio_figures(projects=Project.objects.all(), filters=PortfolioFilters(), now=NOW)
    assert [_blocker(b) for b in figures.top_blockers] == [_blocker(b) for b in selectors.top_blockers(rows)]


@pytest.mark.parametrize(("seconds_short", "stuck"), [(0, True), (1, False)])
def test_a_project_is_stuck_from_the_first_instant_past_the_limit(
    db: None, settings: Any, seconds_short: int, stuck: bool
) -> None:
    settings.READINESS_STUCK_AFTER_DAYS = 30
    ProjectFactory(stage="pilot", stage_changed_at=NOW - timedelta(days=31, seconds=-seconds_short))
    rows = portfolio_rows(projects=Project.objects.all(), filters=PortfolioFilters(), now=NOW)
    figures = portfolio_figures(projects=Project.objects.all(), filters=PortfolioFilters(), now=NOW)
    assert [row.stuck for row in rows] == [stuck]
    assert figures.kpis.stuck == int(stuck)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the funnel's index exists on PostgreSQL only")
def test_the_funnel_ranks_its_named_places_in_the_order_of_an_index(mixed: None) -> None:
    # The ranking's order and columns are the index's (projects migration 0006): the planner can read
    # them in order from it, without a sort. Table scans off: the planner prefers one at forty projects.
    with CaptureQueriesContext(connection) as queries:
        portfolio_figures(projects=Project.objects.all(), filters=PortfolioFilters(), now=NOW)
    (ranking,) = [query["sql"] for query in queries if "ROW_NUMBER() OVER (PARTITION BY" in query["sql"]]
    plan = plan_without_table_scans(ranking)
    assert "Scan using project_entry_order" in plan  # index-only once VACUUM has marked the pages
    assert "Sort" not in plan
