"""Issue 4's "Done when", end to end against a real Celery worker and a real beat process on the
configured broker (Redis in CI, the file-system broker by default) and this test's database: a
project in production whose health target goes down turns no_go within two probe intervals, and its
webhook receives exactly one message."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.utils import timezone

from readiness.alerts.models import Channel, Delivery
from readiness.celery import app
from readiness.projects.models import Project
from readiness.scoring.models import Scorecard
from readiness.scoring.services import signoff_create
from readiness.telemetry.models import HealthCheck, IngestBatch, MetricPoint
from tests.alerts.conftest import Receiver
from tests.conftest import Cast
from tests.factories import MetricCriterionFactory
from tests.servers import database_url, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 30  # seconds between probes of the target: the shortest a health check may have


class TargetHandler(BaseHTTPRequestHandler):
    server: TargetServer

    def do_GET(self) -> None:
        status, body = (200, b"ok") if self.server.up.is_set() else (503, b"overloaded")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class TargetServer(ThreadingHTTPServer):
    """The project's model service: answers its health check with 200 while up, 503 once down."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), TargetHandler)
        self.up = threading.Event()
        self.up.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/healthz"


@pytest.fixture
def target() -> Iterator[TargetServer]:
    server = TargetServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


class Cluster:
    """`celery worker` and `celery beat` subprocesses on the configured broker and this test's database,
    exactly as production runs them (beat with the database scheduler, seeded from the code)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "text",
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        # Messages other tests left on this broker (deliveries of flushed databases) would only
        # delay the worker: start from an empty queue.
        app.control.purge()
        for name, command in {
            "worker": ["worker", "--pool=solo", "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
            "beat": ["beat", "--loglevel=WARNING"],
        }.items():
            log = (self.logs / f"{name}.log").open("wb")
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "readiness", *command],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return all(process.poll() is None for process in self.processes.values())

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def tails(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{(self.logs / f'{name}.log').read_text(errors='replace')[-3000:]}"
            for name in self.processes
        )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    processes = Cluster(tmp_path)
    yield processes
    processes.stop()


def latest(project: Project) -> Scorecard | None:
    return Scorecard.objects.filter(project=project).order_by("-computed_at", "-id").first()


def settled(project: Project) -> bool:
    """Every probe point applied, no evaluation queued, no delivery left to send."""
    return (
        not IngestBatch.objects.filter(project=project, state="pending").exists()
        and not Project.objects.filter(pk=project.pk, evaluation_pending=True).exists()
        and not Delivery.objects.filter(state__in=["pending", "sending"]).exists()
    )


def test_health_target_down_turns_no_go_within_two_intervals_and_notifies_once(
    cast: Cast, target: TargetServer, receiver: Receiver, cluster: Cluster
) -> None:
    project = cast.project
    Project.objects.filter(pk=project.pk).update(stage="production")
    MetricCriterionFactory(
        project=project,
        key="availability",
        title="Availability",
        dimension="engineering",
        metric="health.up",
        aggregation="mean",
        window="30d",
        op=">=",
        threshold=0.999,
    )
    check = HealthCheck.objects.create(
        project=project,
        name="api",
        url=target.url,
        interval=INTERVAL,
        timeout=2.0,
        next_probe_at=timezone.now(),
    )
    cluster.start()

    # The target is up: beat's probe cycle writes health.up = 1 and the worker applies it.
    assert wait_for(lambda: MetricPoint.objects.filter(project=project, metric="health.up").exists(), 120), (
        cluster.tails()
    )
    # Every dimension's responsible person signs off: the project is go, as production requires.
    for dimension in ("data_science", "engineering", "product", "security"):
        signoff_create(
            project=Project.objects.get(pk=project.pk), dimension=dimension, by=cast.owner(dimension)
        )
    assert wait_for(lambda: (card := latest(project)) is not None and card.decision == "go", 30)
    channel = Channel.objects.create(project=project, kind="webhook", url=receiver.url())

    target.up.clear()
    down_at = timezone.now()
    assert wait_for(
        lambda: (card := latest(project)) is not None and card.decision == "no_go", 4 * INTERVAL
    ), cluster.tails()
    no_go = latest(project)
    assert no_go is not None
    took = no_go.computed_at - down_at
    print(f"no_go {took.total_seconds():.1f} s after the target went down (limit {2 * INTERVAL} s)")
    assert took <= dt.timedelta(seconds=2 * INTERVAL)
    assert {(b["criterion"], b["status"]) for b in no_go.payload["blockers"]} >= {("availability", "fail")}

    assert wait_for(lambda: len(receiver.received) >= 1, 60), cluster.tails()
    # Keep watching through the next probe (still down) and its evaluation: nothing more is sent.
    assert wait_for(
        lambda: HealthCheck.objects.get(pk=check.pk).last_probe_at > no_go.computed_at, 2 * INTERVAL
    )
    assert wait_for(lambda: settled(project), 60)
    assert cluster.alive(), cluster.tails()

    [message] = receiver.received
    assert message.body["project"]["slug"] == "fraud-detector"
    assert message.body["decision"] == {"old": "go", "new": "no_go"}
    availability = [b for b in message.body["blockers"] if b["criterion"] == "availability"]
    assert [(b["status"], b["owner"]) for b in availability] == [("fail", "bob")]
    assert message.body["link"].endswith("/projects/fraud-detector/")
    assert list(Delivery.objects.filter(channel=channel).values_list("state", "attempts")) == [("sent", 1)]
