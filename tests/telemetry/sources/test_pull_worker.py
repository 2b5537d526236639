"""A real Celery worker consuming only the ``pulls`` queue runs the pull task: the task is routed
there, claims the due source and stores its points."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from readiness.telemetry.models import MetricPoint, MetricSource
from readiness.telemetry.tasks import pull_sources
from tests.factories import ProjectFactory
from tests.pull_servers import PrometheusServer
from tests.servers import in_process_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pulls_worker() -> Iterator[None]:
    # Consuming the pulls queue and nothing else.
    with in_process_worker(queues=["pulls"]):
        yield


def test_a_worker_on_the_pulls_queue_pulls_due_sources(
    prometheus: PrometheusServer, pulls_worker: None
) -> None:
    # vector(1) has a value at every timestamp, whatever has been scraped yet.
    source = MetricSource.objects.create(
        project=ProjectFactory(),
        name="prod",
        kind="prometheus",
        url=prometheus.url,
        queries={"one": "vector(1)"},
    )

    pull_sources.delay()

    assert wait_for(lambda: MetricPoint.objects.filter(source="prometheus:prod").exists(), timeout=60)
    point = MetricPoint.objects.get(source="prometheus:prod")
    assert (point.project_id, point.metric, point.value) == (source.project_id, "one", 1.0)
    source.refresh_from_db()
    assert source.last_success_at is not None and source.points_stored == 1
