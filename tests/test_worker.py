"""Against a real Celery worker on the configured broker (Redis in CI, the file-system transport by
default): enqueued evaluations are processed and stored."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from celery.contrib.testing.worker import start_worker

from readiness.celery import app
from readiness.scoring.models import Scorecard
from readiness.scoring.tasks import evaluate_active_projects, project_evaluate
from tests.factories import MetricCriterionFactory, ProjectFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker() -> Iterator[None]:
    # A worker thread in this process, consuming from the real broker; it shares the test database.
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        yield


def wait_for(predicate: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_worker_evaluates_an_enqueued_project(worker: None) -> None:
    criterion = MetricCriterionFactory(project=ProjectFactory(stage="prototype"))
    project_evaluate.delay(criterion.project_id)
    assert wait_for(lambda: Scorecard.objects.filter(project=criterion.project).exists())
    assert Scorecard.objects.get(project=criterion.project).decision == "no_go"


def test_periodic_job_fans_out_to_every_active_project(worker: None) -> None:
    active = [ProjectFactory(stage=stage) for stage in ("prototype", "pilot", "production")]
    retired = ProjectFactory(stage="retired")
    evaluate_active_projects.delay()
    assert wait_for(lambda: Scorecard.objects.filter(project__in=active).count() == 3)
    assert not Scorecard.objects.filter(project=retired).exists()
