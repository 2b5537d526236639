"""Each project's standing, blockers and weekly decisions (what the portfolio counts) follow every stored
scorecard in its transaction, backdated ones included, and a rebuild from the scorecards agrees."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import F

from readiness.projects.models import Project
from readiness.scoring.models import (
    BlockerTally,
    Scorecard,
    Standing,
    StandingBlocker,
    WeeklyDecision,
    WeeklyTally,
)
from readiness.scoring.standings import (
    current_models,
    standings_rebuild,
    tallies_rebuild,
    week_of,
    weekly_decisions,
)
from tests.factories import ProjectFactory

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday
BLOCKED = [
    {"dimension": "security", "criterion": "pen_test", "status": "fail"},
    {"dimension": "security", "criterion": "pen_test", "status": "fail"},  # twice: counted once
    {"dimension": None, "criterion": None, "status": "prohibited"},
]


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def stored(project: Project, decision: str, at: datetime, blockers: list | None = None) -> Scorecard:
    return Scorecard.objects.create(
        project=project,
        target="production",
        decision=decision,
        computed_at=at,
        digest=f"{decision}{at.isoformat()}",
        payload={"decision": decision, "dimensions": {}, "criteria": [], "blockers": blockers or []},
    )


def weeks(project: Project) -> list[tuple[date, str]]:
    return list(
        WeeklyDecision.objects.filter(project=project).order_by("week").values_list("week", "decision")
    )


def blockers(project: Project) -> set[tuple[str | None, str, bool]]:
    return set(
        StandingBlocker.objects.filter(project=project).values_list("dimension", "key", "is_criterion")
    )


def test_weeks_start_on_monday() -> None:
    assert week_of(datetime(2026, 11, 15, 23, 59, tzinfo=UTC)) == date(2026, 11, 9)
    assert week_of(datetime(2026, 11, 16, 0, 0, tzinfo=UTC)) == date(2026, 11, 16)


def test_a_week_without_a_scorecard_keeps_the_decision_before_it() -> None:
    history = [
        (datetime(2026, 10, 27, tzinfo=UTC), "go"),
        (datetime(2026, 11, 10, tzinfo=UTC), "no_go"),
        (datetime(2026, 11, 12, tzinfo=UTC), "go"),  # the week's last scorecard decides it
    ]
    assert weekly_decisions(history) == [
        (date(2026, 10, 26), "go"),
        (date(2026, 11, 2), "go"),
        (date(2026, 11, 9), "go"),
    ]
    assert weekly_decisions([]) == []


@pytest.mark.django_db
def test_the_standing_follows_each_new_scorecard() -> None:
    project = ProjectFactory()
    assert not Standing.objects.filter(project=project).exists()
    first = stored(project, "no_go", datetime(2026, 11, 3, tzinfo=UTC), BLOCKED)
    standing = Standing.objects.get(project=project)
    assert (standing.scorecard_id, standing.decision, standing.week) == (first.pk, "no_go", date(2026, 11, 2))
    assert blockers(project) == {("security", "pen_test", True), (None, "prohibited", False)}
    latest = stored(project, "go", datetime(2026, 11, 17, tzinfo=UTC))
    standing.refresh_from_db()
    assert (standing.scorecard_id, standing.decision, standing.week) == (latest.pk, "go", date(2026, 11, 16))
    assert blockers(project) == set()
    assert weeks(project) == [
        (date(2026, 11, 2), "no_go"),
        (date(2026, 11, 9), "no_go"),
        (date(2026, 11, 16), "go"),
    ]


@pytest.mark.django_db
def test_a_backdated_scorecard_rewrites_its_weeks_but_not_the_standing() -> None:
    project = ProjectFactory()
    latest = stored(project, "go", datetime(2026, 11, 17, tzinfo=UTC))
    stored(project, "no_go", datetime(2026, 10, 28, tzinfo=UTC), BLOCKED)
    standing = Standing.objects.get(project=project)
    assert (standing.scorecard_id, standing.decision) == (latest.pk, "go")
    assert blockers(project) == set()
    assert weeks(project) == [
        (date(2026, 10, 26), "no_go"),
        (date(2026, 11, 2), "no_go"),
        (date(2026, 11, 9), "no_go"),
        (date(2026, 11, 16), "go"),
    ]


@pytest.mark.django_db
def test_a_rolled_back_scorecard_leaves_no_standing() -> None:
    project = ProjectFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        stored(project, "go", datetime(2026, 11, 17, tzinfo=UTC))
        raise RuntimeError("the evaluation failed after storing")
    assert not Standing.objects.filter(project=project).exists()
    assert weeks(project) == []


@pytest.mark.django_db
def test_a_rebuild_from_the_scorecards_agrees_with_what_storing_wrote() -> None:
    projects = [ProjectFactory() for _ in range(3)]
    stored(projects[0], "no_go", datetime(2026, 9, 1, tzinfo=UTC), BLOCKED)
    stored(projects[0], "go", datetime(2026, 11, 17, tzinfo=UTC))
    stored(projects[1], "no_go", datetime(2026, 11, 10, tzinfo=UTC), BLOCKED)
    stored(projects[1], "go", datetime(2026, 10, 1, tzinfo=UTC))  # backdated
    before = [(Standing.objects.get(project=p).scorecard_id, weeks(p), blockers(p)) for p in projects[:2]]
    Standing.objects.all().delete()
    StandingBlocker.objects.all().delete()
    WeeklyDecision.objects.all().delete()
    assert standings_rebuild(store=current_models()) == 2  # the third project has no scorecard
    after = [(Standing.objects.get(project=p).scorecard_id, weeks(p), blockers(p)) for p in projects[:2]]
    assert after == before
    assert not Standing.objects.filter(project=projects[2]).exists()


def tallied() -> tuple[dict, dict]:
    """The tallies as stored, without the keys that count no project (a tally may keep a zero)."""
    blockers = {
        (dimension or None, key, is_criterion): n
        for dimension, key, is_criterion, n in BlockerTally.objects.values_list(
            "dimension", "key", "is_criterion", "projects"
        )
        if n
    }
    weeks = {
        (week, decision): n
        for week, decision, n in WeeklyTally.objects.values_list("week", "decision", "projects")
        if n
    }
    return blockers, weeks


def recounted() -> tuple[dict, dict]:
    """The tallies counted afresh from every project's rows."""
    blockers = Counter(StandingBlocker.objects.values_list("dimension", "key", "is_criterion"))
    weeks = Counter(WeeklyDecision.objects.values_list("week", "decision"))
    return dict(blockers), dict(weeks)


@pytest.mark.django_db
def test_the_tallies_follow_new_backdated_and_rolled_back_scorecards_and_deleted_projects() -> None:
    first, second, third = ProjectFactory(), ProjectFactory(), ProjectFactory()
    stored(first, "no_go", datetime(2026, 10, 1, tzinfo=UTC), BLOCKED)
    stored(second, "no_go", datetime(2026, 11, 3, tzinfo=UTC), BLOCKED[:1])
    assert tallied() == recounted()
    assert tallied()[0] == {("security", "pen_test", True): 2, (None, "prohibited", False): 1}
    stored(first, "go", datetime(2026, 11, 17, tzinfo=UTC))  # new: its blockers leave the tally
    assert tallied() == recounted()
    stored(second, "go", datetime(2026, 10, 20, tzinfo=UTC))  # backdated: only its weeks move
    assert tallied() == recounted()
    stored(third, "no_go", datetime(2026, 11, 16, 9, tzinfo=UTC), BLOCKED)
    stored(third, "no_go", datetime(2026, 11, 16, 10, tzinfo=UTC), BLOCKED)  # the same: nothing moves
    assert tallied() == recounted()
    before = tallied()
    with pytest.raises(RuntimeError), transaction.atomic():
        stored(third, "go", datetime(2026, 11, 17, tzinfo=UTC))
        stored(ProjectFactory(), "no_go", datetime(2026, 11, 17, tzinfo=UTC), BLOCKED)
        raise RuntimeError("the evaluation failed after storing")
    assert tallied() == before == recounted()
    second.delete()
    assert tallied() == recounted()
    Project.objects.filter(pk=third.pk).delete()
    assert tallied() == recounted()
    assert tallied()[0] == {}


@pytest.mark.django_db
def test_a_rebuild_moves_the_tallies_by_what_it_rewrites() -> None:
    projects = [ProjectFactory() for _ in range(3)]
    stored(projects[0], "no_go", datetime(2026, 9, 1, tzinfo=UTC), BLOCKED)
    stored(projects[1], "no_go", datetime(2026, 11, 10, tzinfo=UTC), BLOCKED[:1])
    stored(projects[2], "go", datetime(2026, 10, 5, tzinfo=UTC))
    before = tallied()
    # A project's rows lost (as if written by COPY without them): the rebuild writes them anew, and
    # the tallies move by exactly what it rewrote.
    StandingBlocker.objects.filter(project=projects[1]).delete()
    WeeklyDecision.objects.filter(project=projects[1]).delete()
    BlockerTally.objects.filter(key="pen_test").update(projects=F("projects") - 1)  # ... and its tally
    WeeklyTally.objects.filter(decision="no_go", week=date(2026, 11, 9)).update(projects=F("projects") - 1)
    standings_rebuild(store=current_models(), project_ids=[p.pk for p in projects])
    assert tallied() == before == recounted()


@pytest.mark.django_db
def test_a_recount_of_the_tallies_agrees_with_what_storing_moved() -> None:
    for n, project in enumerate(ProjectFactory() for _ in range(4)):
        stored(project, "no_go", datetime(2026, 9, 1 + n, tzinfo=UTC), BLOCKED[: n % 3 + 1])
        stored(project, ["go", "no_go"][n % 2], datetime(2026, 11, 2 + n, tzinfo=UTC), BLOCKED[n % 2 :])
    before = tallied()
    BlockerTally.objects.all().delete()
    WeeklyTally.objects.all().delete()
    tallies_rebuild(
        blocker_tally=BlockerTally, weekly_tally=WeeklyTally, blocker=StandingBlocker, weekly=WeeklyDecision
    )
    assert tallied() == before == recounted()


@pytest.mark.django_db(transaction=True)
def test_the_migration_counts_the_tallies_from_the_rows_already_stored() -> None:
    before, after = [("scoring", "0007_project_standings")], [("scoring", "0008_standing_tallies")]
    projects = [ProjectFactory(), ProjectFactory()]
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        blocker, weekly = (
            old.get_model("scoring", "StandingBlocker"),
            old.get_model("scoring", "WeeklyDecision"),
        )
        for project in projects:
            blocker.objects.create(
                project_id=project.pk, dimension="security", key="pen_test", is_criterion=True
            )
            weekly.objects.create(project_id=project.pk, week=date(2026, 11, 9), decision="no_go")
        blocker.objects.create(
            project_id=projects[0].pk, dimension=None, key="prohibited", is_criterion=False
        )
        weekly.objects.create(project_id=projects[0].pk, week=date(2026, 11, 16), decision="go")
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    assert tallied() == recounted()
    assert tallied() == (
        {("security", "pen_test", True): 2, (None, "prohibited", False): 1},
        {(date(2026, 11, 9), "no_go"): 2, (date(2026, 11, 16), "go"): 1},
    )
