"""The periodic jobs through a real Celery worker on the configured broker (Redis in CI, the file-system
transport by default): the drift job stores results and gets the changed project re-evaluated; a burst
of periodic ticks publishes one evaluation per project."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from django.utils import timezone

from readiness.celery import app
from readiness.projects.models import Project
from readiness.scoring.models import DriftResult, Scorecard
from readiness.scoring.tasks import compute_drift, evaluate_active_projects
from tests.factories import ProjectFactory
from tests.scoring.drift.conftest import drift_criterion, latest_result, normal, store_points
from tests.servers import in_process_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
DAY = dt.timedelta(days=1)


def queued_messages() -> int:
    with app.connection_for_write() as conn:
        # Not passive: Redis drops an empty queue's key, and a passive declare would call it unknown.
        return conn.default_channel.queue_declare(queue="evaluation").message_count


@pytest.fixture
def empty_queue() -> None:
    app.control.purge()


@pytest.fixture
def worker(empty_queue: None) -> Iterator[None]:
    with in_process_worker():
        yield


def test_drift_job_on_a_worker_stores_results_and_reevaluates_the_drifted_project(worker: None) -> None:
    now = timezone.now()
    project = ProjectFactory(slug="drifting")
    criterion = drift_criterion(project, reference_start=now - DAY * 20, reference_end=now - DAY * 10)
    store_points(project, normal(1, 500), start=now - DAY * 20, end=now - DAY * 10)
    store_points(project, normal(2, 500, mean=1.5), start=now - DAY / 2, end=now)

    compute_drift.delay()

    assert wait_for(lambda: DriftResult.objects.filter(criterion=criterion).exists())
    assert DriftResult.objects.get(criterion=criterion).status == "fail"
    assert wait_for(lambda: Scorecard.objects.filter(project=project).exists())
    assert latest_result(project, "score_drift")["status"] == "fail"
    assert wait_for(lambda: not Project.objects.get(pk=project.pk).evaluation_pending)


def test_a_burst_of_periodic_ticks_publishes_one_evaluation_per_project(empty_queue: None) -> None:
    projects = [ProjectFactory(stage=stage) for stage in ("prototype", "pilot", "production")]
    for _ in range(3):
        evaluate_active_projects()  # three ticks before any worker got to them

    assert queued_messages() == 3

    with in_process_worker():
        assert wait_for(lambda: Scorecard.objects.filter(project__in=projects).count() == 3)
        assert wait_for(lambda: not Project.objects.filter(evaluation_pending=True).exists())
    assert queued_messages() == 0
