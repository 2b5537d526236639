"""Migration scoring 0007 gives every project that already has scorecards its standing, blockers and
weekly decisions, as storing those scorecards one by one would have written them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from readiness.scoring.models import Standing, StandingBlocker, WeeklyDecision
from tests.factories import ProjectFactory

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday
BEFORE = [("scoring", "0006_scorecard_summary")]
AFTER = [("scoring", "0007_project_standings")]
SUMMARY = {
    "dimensions": {},
    "blockers": [
        {"dimension": "security", "criterion": "pen_test", "status": "fail"},
        {"dimension": None, "criterion": None, "status": "prohibited"},
    ],
}


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def insert_scorecard(project_id: int, decision: str, at: datetime, summary: dict) -> int:
    """A scorecard row as 0006's schema holds it (no model: the current one may have moved on)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO scoring_scorecard (project_id, target, decision, computed_at, digest, payload,"
            " previous_decision, summary) VALUES (%s, 'production', %s, %s, %s, %s, '', %s)",
            [project_id, decision, at.isoformat(), f"{decision}{at}", json.dumps({}), json.dumps(summary)],
        )
        cursor.execute("SELECT MAX(id) FROM scoring_scorecard")
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_standings_of_projects_with_scorecards() -> None:
    blocked, cleared, unscored = ProjectFactory(), ProjectFactory(), ProjectFactory()
    try:
        MigrationExecutor(connection).migrate(BEFORE)
        insert_scorecard(cleared.pk, "no_go", datetime(2026, 11, 3, tzinfo=UTC), SUMMARY)
        latest_go = insert_scorecard(cleared.pk, "go", datetime(2026, 11, 17, tzinfo=UTC), {})
        latest_no_go = insert_scorecard(blocked.pk, "no_go", datetime(2026, 11, 10, tzinfo=UTC), SUMMARY)
        # Stored later but backdated: the standing is the newest by computed_at, not by id.
        insert_scorecard(blocked.pk, "go", datetime(2026, 10, 28, tzinfo=UTC), {})
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(AFTER)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    standings = {s.project_id: (s.scorecard_id, s.decision, s.week) for s in Standing.objects.all()}
    assert standings == {
        cleared.pk: (latest_go, "go", date(2026, 11, 16)),
        blocked.pk: (latest_no_go, "no_go", date(2026, 11, 9)),
    }
    assert unscored.pk not in standings
    assert set(StandingBlocker.objects.values_list("project_id", "dimension", "key", "is_criterion")) == {
        (blocked.pk, "security", "pen_test", True),
        (blocked.pk, None, "prohibited", False),
    }
    weeks = WeeklyDecision.objects.order_by("project_id", "week").values_list(
        "project_id", "week", "decision"
    )
    assert list(weeks.filter(project=blocked)) == [
        (blocked.pk, date(2026, 10, 26), "go"),
        (blocked.pk, date(2026, 11, 2), "go"),
        (blocked.pk, date(2026, 11, 9), "no_go"),
    ]
    assert list(weeks.filter(project=cleared)) == [
        (cleared.pk, date(2026, 11, 2), "no_go"),
        (cleared.pk, date(2026, 11, 9), "no_go"),
        (cleared.pk, date(2026, 11, 16), "go"),
    ]
