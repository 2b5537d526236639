"""A broker that accepts connections and never answers (a half-open connection after a failover, a
stuck proxy in front of Redis): pushes are still answered 202 within a bound, their points are
stored, and after the first failed publish a web process stops waiting on the broker for a while,
so its threads do not each sit out a timeout. Before the broker's socket timeouts (settings.py) and
the publishing backoff (readiness/publishing.py), the first push hung until gunicorn killed its
process."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest
from django.utils import timezone

from readiness.projects.services import token_create
from readiness.publishing import BROKER_BACKOFF
from readiness.telemetry.models import IngestBatch, MetricPoint
from tests.factories import ProjectFactory
from tests.faults.conftest import UNLIMITED
from tests.servers import WebServer, database_url, subprocess_env

# Seconds within which a push must be answered although the broker never answers: one publish attempt
# and its one retry, each bounded by the broker's 5 s socket timeout, and the request itself.
FIRST_ANSWER_BOUND = 15.0
# While a process backs off the broker, a push costs what it costs without one.
BACKED_OFF_BOUND = 2.0


@pytest.fixture
def silent_broker() -> Iterator[str]:
    """A listening socket nobody reads: connections complete in the kernel's backlog, and every
    command sent on them waits for an answer that never comes."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    listener.close()


@pytest.fixture
def web_on_silent_broker(silent_broker: str, tmp_path: object) -> Iterator[WebServer]:
    env = subprocess_env(broker_url=silent_broker, db_url=database_url(), **UNLIMITED)
    # One process, so every push below meets the same backoff.
    server = WebServer(env, workers=1, log=tmp_path / "gunicorn.log")  # type: ignore[operator]
    server.start()
    yield server
    server.stop()


def push(server: WebServer, secret: str, value: float) -> tuple[int, float]:
    body = orjson.dumps(
        {"points": [{"metric": "latency_ms", "value": value, "ts": timezone.now().isoformat()}]}
    )
    started = time.monotonic()
    response = httpx.post(
        f"{server.url}/api/v1/metrics",
        content=body,
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
        timeout=60,
    )
    return response.status_code, time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_pushes_are_answered_and_kept_while_the_broker_never_answers(
    web_on_silent_broker: WebServer, report: Callable[[str], None]
) -> None:
    project = ProjectFactory()
    _, secret = token_create(project=project, name="load", scopes=["metrics:write"])

    status, first = push(web_on_silent_broker, secret, 1.0)
    assert status == 202
    assert first < FIRST_ANSWER_BOUND, f"the first push took {first:.1f} s against a silent broker"

    later = [push(web_on_silent_broker, secret, float(n)) for n in range(2, 7)]
    assert [status for status, _ in later] == [202] * 5
    slowest = max(seconds for _, seconds in later)
    # All five fall inside the backoff the first push's failed publish started.
    assert sum(seconds for _, seconds in later) < BROKER_BACKOFF
    assert slowest < BACKED_OFF_BOUND, f"a push during the backoff took {slowest:.1f} s"

    # Small pushes are written by the request itself: stored although no message was ever published,
    # and the evaluation they asked for stays recorded for the lost-request rule to queue again.
    assert MetricPoint.objects.filter(project=project).count() == 6
    assert IngestBatch.objects.filter(project=project, state=IngestBatch.State.DONE).count() == 6
    project.refresh_from_db()
    assert project.evaluation_pending
    report(
        f"silent broker: first push answered 202 in {first:.1f} s, the next five in at most "
        f"{slowest * 1000:.0f} ms each; 6 points stored, their evaluation request kept pending"
    )
