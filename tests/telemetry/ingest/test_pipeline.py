"""The ingestion pipeline against a real Celery worker and a real broker: every 202-acknowledged
point is stored exactly once, through a broker outage and a worker killed mid-batch."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import orjson
import pytest
import redis
from django.db.models import Sum
from django.test import Client

from readiness.projects.services import token_create
from readiness.scoring.models import Scorecard
from readiness.scoring.services import scorecard_refresh
from readiness.telemetry.models import IngestBatch, MetricPoint
from readiness.telemetry.services import DIRECT_MAX_POINTS, batches_drain, batches_sweep
from tests.factories import MetricCriterionFactory, ProjectFactory
from tests.servers import (
    RedisServer,
    Worker,
    private_broker,  # noqa: F401 -- the fixture ``broker``
    wait_for,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(broker: RedisServer) -> Iterator[Worker]:
    process = Worker(broker.url)
    process.start()
    process.wait_ready()
    yield process
    process.stop()


def push_batches(count: int, size: int) -> tuple[int, list[float]]:
    project = ProjectFactory()
    _, secret = token_create(project=project, name="ci", scopes=["metrics:write"])
    client = Client()
    now = dt.datetime.now(dt.UTC)
    sent: list[float] = []
    for b in range(count):
        values = [float(b * size + i) for i in range(size)]
        points = [
            {"metric": "m", "value": v, "ts": (now - dt.timedelta(seconds=i)).isoformat()}
            for i, v in enumerate(values)
        ]
        response = client.post(
            "/api/v1/metrics",
            orjson.dumps({"points": points}),
            content_type="application/json",
            headers={"authorization": f"Bearer {secret}"},
        )
        assert response.status_code == 202, response.content
        sent.extend(values)
    return project.pk, sent


def stored(project_id: int) -> tuple[int, float]:
    row = MetricPoint.objects.filter(project_id=project_id).aggregate(n=Sum(1), total=Sum("value"))
    return MetricPoint.objects.filter(project_id=project_id).count(), float(row["total"] or 0)


def all_done() -> bool:
    return not IngestBatch.objects.filter(state="pending").exists()


def sweep_as_if_a_minute_passed() -> int:
    # The sweeper runs every 30 s under beat; here it is called directly, as beat would a minute on.
    return batches_sweep(now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2))


def test_a_real_worker_applies_every_batch_exactly_once(worker: Worker) -> None:
    project_id, sent = push_batches(count=5, size=2_000)
    assert wait_for(all_done)
    assert stored(project_id) == (len(sent), sum(sent))


def test_points_acknowledged_during_a_broker_outage_are_applied_once_it_is_back(
    broker: RedisServer, worker: Worker
) -> None:
    broker.stop()
    project_id, sent = push_batches(count=4, size=1_000)  # every push still answers 202
    assert IngestBatch.objects.filter(state="pending").count() == 4
    broker.start()
    assert sweep_as_if_a_minute_passed() == 4
    assert wait_for(all_done, timeout=90)
    assert stored(project_id) == (len(sent), sum(sent))


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(broker: RedisServer, worker: Worker) -> None:
    project_id, sent = push_batches(count=12, size=10_000)
    assert wait_for(lambda: IngestBatch.objects.filter(state="done").exists(), timeout=60)
    worker.kill()  # SIGKILL: no chance to finish, ack or roll back by itself
    assert not all_done(), "the worker finished everything before it could be killed"
    worker.start()
    sweep_as_if_a_minute_passed()
    assert wait_for(all_done, timeout=120)
    assert stored(project_id) == (len(sent), sum(sent))


def queued_task_names(broker: RedisServer) -> list[str]:
    client = redis.Redis.from_url(broker.url)
    return [
        orjson.loads(raw)["headers"]["task"]
        for queue in ("ingestion", "evaluation")
        for raw in client.lrange(queue, 0, -1)
    ]


def test_a_burst_of_large_pushes_queues_few_drains_and_one_evaluation(broker: RedisServer) -> None:
    push_batches(count=20, size=DIRECT_MAX_POINTS + 1)
    drains = queued_task_names(broker).count("telemetry.batches_drain")
    assert 1 <= drains < 20  # pushes inside a scheduled drain's window ride on it
    applied, more = batches_drain()
    assert (applied, more) == (20 * (DIRECT_MAX_POINTS + 1), False)
    assert queued_task_names(broker).count("scoring.project_evaluate") == 1


def test_a_burst_of_small_pushes_queues_no_drain_and_one_evaluation(broker: RedisServer) -> None:
    project_id, sent = push_batches(count=20, size=10)
    # Written by the requests themselves: nothing for the worker to apply, only one evaluation.
    assert stored(project_id) == (len(sent), sum(sent))
    names = queued_task_names(broker)
    assert names.count("telemetry.batches_drain") == 0
    assert names.count("scoring.project_evaluate") == 1


def test_the_scorecard_reflects_pushed_data_within_seconds(worker: Worker) -> None:
    criterion = MetricCriterionFactory(
        project=ProjectFactory(stage="prototype"),
        key="accuracy_floor",
        metric="accuracy",
        aggregation="latest",
        op=">=",
        threshold=0.9,
    )
    project = criterion.project
    assert scorecard_refresh(project=project).decision == "no_go"  # no data yet: missing blocks
    _, secret = token_create(project=project, name="model", scopes=["metrics:write"])
    response = Client().post(
        "/api/v1/metrics",
        orjson.dumps({"points": [{"metric": "accuracy", "value": 0.95}]}),
        content_type="application/json",
        headers={"authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 202
    started = time.monotonic()
    assert wait_for(lambda: Scorecard.objects.filter(project=project).latest().decision == "go", timeout=30)
    assert time.monotonic() - started < 10
