"""Against a real Celery worker on the configured broker (Redis in CI, the file-system transport by
default): enqueued evaluations are processed and stored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from readiness.scoring.models import Scorecard
from readiness.scoring.tasks import evaluate_active_projects, project_evaluate
from tests.factories import MetricCriterionFactory, ProjectFactory
from tests.servers import in_process_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker() -> Iterator[None]:
    with in_process_worker():
        yield


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
