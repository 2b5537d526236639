"""Expiry and staleness: the periodic re-evaluation of every active project turns criteria as time
passes — each at its edge, with frozen time — and is coalesced, so a burst of ticks queues one
evaluation per project and a project is never evaluated twice at once."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone

from readiness.projects.models import Project
from readiness.scoring.models import Scorecard
from readiness.scoring.requests import LOST_EVALUATION_REQUEST
from readiness.scoring.tasks import evaluate_active_projects, project_evaluate
from readiness.telemetry.models import MetricPoint
from tests.conftest import Cast
from tests.factories import (
    AttestationCriterionFactory,
    AttestationFactory,
    MetricCriterionFactory,
    ProjectFactory,
    WaiverFactory,
)
from tests.scoring.drift.conftest import NOW, latest_result

SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def tick(
    frozen: time_machine.Coordinates, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> Callable[[dt.datetime], None]:
    """Run the periodic re-evaluation as beat would at ``moment``, every evaluation it queues included."""

    def run(moment: dt.datetime) -> None:
        frozen.move_to(moment)
        with django_capture_on_commit_callbacks(execute=True):
            evaluate_active_projects()

    return run


def test_attestation_turns_missing_expired_exactly_when_valid_for_days_ends(
    cast: Cast, tick: Callable[[dt.datetime], None]
) -> None:
    criterion = AttestationCriterionFactory(project=cast.project, key="threat_model", valid_for_days=30)
    AttestationFactory(criterion=criterion, attested_by=cast.security, attested_at=NOW)
    expires = NOW + dt.timedelta(days=30)

    tick(expires - SECOND)
    assert latest_result(cast.project, "threat_model")["status"] == "pass"
    tick(expires)
    shown = latest_result(cast.project, "threat_model")
    assert shown["status"] == "missing" and "expired" in shown["reason"]
    assert any(b["criterion"] == "threat_model" for b in cast.project.scorecards.latest().payload["blockers"])


def test_waiver_past_expires_at_gives_back_the_criterions_real_status(
    cast: Cast, tick: Callable[[dt.datetime], None]
) -> None:
    criterion = MetricCriterionFactory(
        project=cast.project, key="p99_latency", window="30d", aggregation="max", threshold=300.0
    )
    MetricPoint.objects.create(project=cast.project, metric="latency_ms", ts=NOW - SECOND, value=900.0)
    expires = NOW + dt.timedelta(days=10)
    WaiverFactory(
        criterion=criterion,
        requested_by=cast.member,
        requested_at=NOW,
        status="approved",
        approved_by=cast.engineering,
        decided_at=NOW,
        expires_at=expires,
    )

    tick(expires - SECOND)
    assert latest_result(cast.project, "p99_latency")["status"] == "waived"
    tick(expires)
    shown = latest_result(cast.project, "p99_latency")
    assert (shown["status"], shown["value"]) == ("fail", 900.0)


def test_metric_window_moving_past_the_last_data_turns_missing(
    cast: Cast, tick: Callable[[dt.datetime], None]
) -> None:
    MetricCriterionFactory(
        project=cast.project,
        key="accuracy",
        metric="accuracy",
        aggregation="latest",
        window="1h",
        op=">=",
        threshold=0.9,
    )
    MetricPoint.objects.create(project=cast.project, metric="accuracy", ts=NOW, value=0.95)

    tick(NOW + dt.timedelta(hours=1) - SECOND)  # the window (now - 1h, now] still holds the point
    assert latest_result(cast.project, "accuracy")["status"] == "pass"
    tick(NOW + dt.timedelta(hours=1))  # now - 1h == the point's ts: outside the window
    shown = latest_result(cast.project, "accuracy")
    assert shown["status"] == "missing" and "no accuracy data over 1h" in shown["reason"]


def test_periodic_tick_skips_retired_projects(cast: Cast, tick: Callable[[dt.datetime], None]) -> None:
    retired = ProjectFactory(slug="retired", stage="retired")
    tick(NOW)
    assert Scorecard.objects.filter(project=cast.project).exists()
    assert not Scorecard.objects.filter(project=retired).exists()


# --- Coalescing --------------------------------------------------------------------------------------


def test_a_burst_of_ticks_queues_one_evaluation_per_project(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    others = [ProjectFactory(stage=stage) for stage in ("prototype", "production")]
    with django_capture_on_commit_callbacks() as queued:  # what would be published, unpublished
        counts = [evaluate_active_projects() for _ in range(3)]
    assert counts == [3, 0, 0]
    assert len(queued) == 3
    assert set(Project.objects.filter(evaluation_pending=True)) == {cast.project, *others}


def test_a_project_already_queued_by_ingestion_is_not_queued_again(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    Project.objects.filter(pk=cast.project.pk).update(evaluation_pending=True)
    with django_capture_on_commit_callbacks() as queued:
        assert evaluate_active_projects() == 0
    assert queued == []


def test_a_request_lost_with_its_message_is_queued_again_by_a_later_tick(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    # The flag was set, but its message never reached a worker (broker down at publish time).
    requested = timezone.now()
    Project.objects.filter(pk=cast.project.pk).update(
        evaluation_pending=True, evaluation_requested_at=requested
    )
    with time_machine.travel(requested + LOST_EVALUATION_REQUEST - SECOND, tick=False):
        with django_capture_on_commit_callbacks() as queued:
            assert evaluate_active_projects() == 0
        assert queued == []
    with time_machine.travel(requested + LOST_EVALUATION_REQUEST + SECOND, tick=False):
        with django_capture_on_commit_callbacks() as queued:
            assert evaluate_active_projects() == 1
        assert len(queued) == 1
        assert evaluate_active_projects() == 0  # and only once


def test_once_evaluated_the_next_tick_queues_the_project_again(
    cast: Cast, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        assert evaluate_active_projects() == 1
    assert not Project.objects.get(pk=cast.project.pk).evaluation_pending
    with django_capture_on_commit_callbacks(execute=True):
        assert evaluate_active_projects() == 1


@pytest.mark.django_db(transaction=True)
def test_an_evaluation_waits_for_one_already_running_on_the_same_project() -> None:
    project = ProjectFactory(slug="locked")
    MetricCriterionFactory(project=project)
    finished = threading.Event()

    def evaluate_in_a_worker() -> None:
        try:
            project_evaluate(project.pk)
        finally:
            connection.close()
            finished.set()

    worker = threading.Thread(target=evaluate_in_a_worker)
    with transaction.atomic():
        # What scorecard_refresh holds while it evaluates: the project's row lock (on SQLite, the
        # database's write lock that every transaction of the embedded default takes at BEGIN).
        list(Project.objects.select_for_update().filter(pk=project.pk))
        Scorecard.objects.create(
            project=project,
            target="production",
            decision="no_go",
            digest="held",
            payload={},
            computed_at=timezone.now(),
        )
        worker.start()
        assert not finished.wait(timeout=1.5), "the second evaluation ran while the first held the lock"
    assert finished.wait(timeout=30)
    worker.join()
    # It ran after the first one committed: it saw that scorecard, and stored its own after it.
    digests = list(Scorecard.objects.filter(project=project).order_by("id").values_list("digest", flat=True))
    assert len(digests) == 2 and digests[0] == "held"
