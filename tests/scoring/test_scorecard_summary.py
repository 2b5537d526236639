"""The summary stored with each scorecard (what the portfolio reads instead of the payload): written on
save, and filled in for the scorecards stored before it existed."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from readiness.scoring.models import Scorecard, scorecard_summary
from tests.factories import ProjectFactory

PAYLOAD = {
    "decision": "no_go",
    "dimensions": {
        "security": {
            "status": "fail",
            "score": 50.0,
            "digest": "d1",
            "signoff": {"state": "stale", "by": "dave", "at": "2026-11-01T10:00:00Z"},
        },
        "product": {"status": "pass", "score": 100.0, "digest": "d2", "signoff": None},
    },
    "blockers": [
        {
            "dimension": "security",
            "criterion": "pen_test",
            "status": "fail",
            "reason": "No pen test on record",
            "owner": "dave",
        },
        {"dimension": None, "criterion": None, "status": "prohibited", "reason": "Prohibited tier"},
    ],
    "criteria": [{"key": "pen_test", "status": "fail", "reason": "a long text " * 50}],
}
SUMMARY = {
    "dimensions": {
        "security": {"status": "fail", "score": 50.0, "signoff": "stale"},
        "product": {"status": "pass", "score": 100.0, "signoff": None},
    },
    "blockers": [
        {"dimension": "security", "criterion": "pen_test", "status": "fail"},
        {"dimension": None, "criterion": None, "status": "prohibited"},
    ],
}


def test_the_summary_keeps_what_a_list_of_projects_shows() -> None:
    assert scorecard_summary(PAYLOAD) == SUMMARY
    assert scorecard_summary({}) == {"dimensions": {}, "blockers": []}


@pytest.mark.django_db
def test_a_saved_scorecard_carries_its_summary_whatever_it_was_given() -> None:
    scorecard = Scorecard.objects.create(
        project=ProjectFactory(),
        target="production",
        decision="no_go",
        digest="x",
        payload=PAYLOAD,
        summary={"made": "up"},  # never trusted: the payload decides
    )
    assert Scorecard.objects.get(pk=scorecard.pk).summary == SUMMARY


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_summary_of_every_stored_scorecard() -> None:
    before, after = [("scoring", "0005_criterion_sources")], [("scoring", "0006_scorecard_summary")]
    project = ProjectFactory()
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(before)
        with connection.cursor() as cursor:
            for digest in ("a", "b"):
                cursor.execute(
                    "INSERT INTO scoring_scorecard (project_id, target, decision, computed_at, digest,"
                    " payload, previous_decision) VALUES (%s, 'production', 'no_go', %s, %s, %s, '')",
                    [project.pk, timezone.now().isoformat(), digest, json.dumps(PAYLOAD)],
                )
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    assert list(Scorecard.objects.values_list("summary", flat=True)) == [SUMMARY, SUMMARY]
