"""Each project's standing, blockers and weekly decisions (what the portfolio counts) follow every stored
scorecard in its transaction, backdated ones included, and a rebuild from the scorecards agrees."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.db import transaction

from readiness.projects.models import Project
from readiness.scoring.models import Scorecard, Standing, StandingBlocker, WeeklyDecision
from readiness.scoring.standings import current_models, standings_rebuild, week_of, weekly_decisions
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
