"""The ingestion pipeline against a real Celery worker and a real broker: every 202-acknowledged
point is stored exactly once, through a broker outage and a worker killed mid-batch."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
import redis
from django.conf import settings
from django.db import connection
from django.db.models import Sum
from django.test import Client

from readiness.celery import app
from readiness.projects.services import token_create
from readiness.scoring.models import Scorecard
from readiness.scoring.services import scorecard_refresh
from readiness.telemetry.models import IngestBatch, MetricPoint
from readiness.telemetry.services import batches_drain, batches_sweep
from tests.factories import MetricCriterionFactory, ProjectFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private redis-server this test may stop and start without touching anyone else's."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        assert wait_for(self._answers, timeout=10), "redis-server did not start"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def use_broker(url: str | None, transport_options: dict[str, object]) -> None:
    """Point this process's Celery app at another broker, dropping pooled connections to the old one
    (``app.close()`` alone keeps the producer pool, which would go on publishing to the old URL).
    Celery reads the CELERY_BROKER_URL environment variable before its own setting, so both change."""
    if url is None:
        os.environ.pop("CELERY_BROKER_URL", None)
    else:
        os.environ["CELERY_BROKER_URL"] = url
    app.conf.broker_url, app.conf.broker_transport_options = url, transport_options
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        user = db.get("USER") or "postgres"
        return f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


class Worker:
    """A Celery worker subprocess on the private broker and this test's database."""

    def __init__(self, broker_url: str) -> None:
        self.env = {**os.environ, "CELERY_BROKER_URL": broker_url, "DATABASE_URL": database_url()}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "readiness",
                "worker",
                "--pool=solo",
                "--loglevel=WARNING",
            ],
            cwd=ROOT,
            env=self.env,
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def broker() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI")
        pytest.skip("redis-server is not installed")
    server = RedisServer(free_port())
    server.start()
    saved_env = os.environ.get("CELERY_BROKER_URL")
    saved_options = app.conf.broker_transport_options
    use_broker(server.url, {})  # this process publishes to the private broker too
    yield server
    use_broker(saved_env, saved_options)
    if saved_env is None:
        app.conf.broker_url = settings.CELERY_BROKER_URL
    server.stop()


@pytest.fixture
def worker(broker: RedisServer) -> Iterator[Worker]:
    process = Worker(broker.url)
    process.start()
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
    return [orjson.loads(raw)["headers"]["task"] for raw in client.lrange("celery", 0, -1)]


def test_a_burst_of_pushes_queues_few_drains_and_one_evaluation(broker: RedisServer) -> None:
    push_batches(count=20, size=10)
    drains = queued_task_names(broker).count("telemetry.batches_drain")
    assert 1 <= drains < 20  # pushes inside a scheduled drain's window ride on it
    applied, more = batches_drain()
    assert (applied, more) == (200, False)
    assert queued_task_names(broker).count("scoring.project_evaluate") == 1


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
