"""The broker goes away for at least 30 s in the middle of a sustained push load, while the worker
holds unacknowledged tasks, and comes back: pushes keep getting 202 (the batch is in the database
before the answer), the worker, run exactly as deployed, stays up and resumes consuming by itself, and
every acknowledged point is stored exactly once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from kombu import Connection, Exchange, Queue
from kombu.common import ignore_errors
from kombu.message import Message

from readiness.projects.services import token_create
from tests.factories import ProjectFactory
from tests.faults.conftest import Broker
from tests.faults.load import PHASE_BATCHES, PushLoad, run_phase
from tests.faults.pipeline import applied_batches, batch_size, ledger, pending_batches
from tests.servers import (
    COMPOSE,
    DEPLOYMENTS,
    PROCFILE,
    ROOT,
    Beat,
    CeleryProcess,
    RedisServer,
    WebServer,
    Worker,
    free_port,
    wait_for,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# The bar: a worker rides out an outage of Redis at least this long.
OUTAGE_SECONDS = 30.0
# Celery retries the broker connection at growing intervals (2, 4, 6, ... s, at most 30 s): after a
# 30 s outage the next attempt is at most about 12 s away; the rest is a busy machine's slack.
RESUME_WITHIN = 60.0
# No sweep is called by the test: beat's sweeper (every 30 s, for batches pending over a minute) and
# the drains the web publishes once the broker is back must apply everything by themselves.
APPLY_WITHIN = 180.0

# docker-compose.yml runs Redis (or RabbitMQ) only; on the embedded default the one deployment is the
# Procfile's (make run).
ON_REDIS = not settings.CELERY_BROKER_URL.startswith("filesystem")


@dataclass
class Deployed:
    worker: Worker
    beat: Beat | None

    @property
    def processes(self) -> list[CeleryProcess]:
        return [self.worker] + ([self.beat] if self.beat is not None else [])

    def logs(self) -> str:
        return "\n".join(
            f"--- {process.process_name} log (tail) ---\n{log_tail(process.log)}"
            for process in self.processes
        )


def log_tail(path: Path | None, lines: int = 60) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(params=DEPLOYMENTS if ON_REDIS else (PROCFILE,))
def deployed(request: pytest.FixtureRequest, broker: Broker, tmp_path: Path) -> Iterator[Deployed]:
    deployment = request.param
    worker = Worker(broker.url, log=tmp_path / "worker.log", deployment=deployment)
    beat = (
        Beat(broker.url, log=tmp_path / "beat.log", deployment=deployment) if deployment == COMPOSE else None
    )
    deployed = Deployed(worker=worker, beat=beat)
    for process in deployed.processes:
        process.start()
    yield deployed
    for process in deployed.processes:
        process.stop()


def supervise(worker: Worker) -> int:
    """Start the worker again if it exited, as a process supervisor would; returns 1 if it had.
    kombu's file-system transport ends the worker when its folder vanishes ("Unrecoverable error:
    FileNotFoundError"); on Redis the worker must stay up and reconnect by itself."""
    if worker.alive:
        return 0
    worker.start()
    return 1


def test_the_deployed_worker_rides_out_a_30_s_broker_outage_and_every_acknowledged_point_is_stored_once(
    broker: Broker, deployed: Deployed, web: WebServer, report: Callable[[str], None]
) -> None:
    worker = deployed.worker
    project = ProjectFactory()
    _, secret = token_create(project=project, name="load", scopes=["metrics:write"])
    load = PushLoad(port=web.port, secret=secret, clients=4, size=batch_size())
    load.start()
    try:
        run_phase(load)
        # acks_late: a task the worker is running, or has prefetched, stays unacknowledged in the
        # broker until it finishes. The outage starts while the worker holds some.
        assert wait_for(lambda: broker.unacknowledged() > 0, timeout=60, interval=0.005), (
            "the worker never held an unacknowledged task"
        )
        unacknowledged_at_stop = broker.unacknowledged()
        broker.stop()
        stopped = time.monotonic()
        # Still 202s: the broker is not on the acknowledgement path.
        during_outage = run_phase(load, seconds=OUTAGE_SECONDS)
        outage = time.monotonic() - stopped
        alive_through_outage = [process.alive for process in deployed.processes]
        pending_at_restart, applied_at_restart = pending_batches(), applied_batches()
        broker.start()
        back = time.monotonic()
        restarts = supervise(worker)
        resumed = wait_for(lambda: applied_batches() > applied_at_restart, timeout=RESUME_WITHIN)
        resumed_after = time.monotonic() - back
        run_phase(load)
    finally:
        load.stop()
    restarts += supervise(worker)
    started = time.monotonic()
    applied = wait_for(lambda: pending_batches() == 0, timeout=APPLY_WITHIN)
    figures = ledger(load, project.pk)
    figures.extra = {
        "deployment": worker.deployment,
        "unacknowledged tasks when the broker stopped": unacknowledged_at_stop,
        "outage seconds": round(outage, 1),
        "acknowledged during the outage": during_outage,
        "batches pending when the broker came back": pending_at_restart,
        "seconds until the worker applied again": round(resumed_after, 1) if resumed else "never",
        "seconds to apply the rest": round(time.monotonic() - started, 1),
        "worker restarts": restarts,
    }
    report(figures.line("broker outage"))
    if ON_REDIS:
        assert all(alive_through_outage), f"a Celery process died with its Redis broker\n{deployed.logs()}"
        assert restarts == 0, deployed.logs()
    assert resumed, f"the worker did not consume again within {RESUME_WITHIN:.0f} s\n{deployed.logs()}"
    assert applied, f"{pending_batches()} batches never applied\n{deployed.logs()}"
    assert all(process.alive for process in deployed.processes), deployed.logs()
    load.assert_exactly_once(figures)
    assert outage >= OUTAGE_SECONDS
    assert during_outage >= PHASE_BATCHES * load.size
    assert set(figures.status_counts) == {"202"}  # an outage of the broker never reaches the client


# What settings.py names for a Redis broker (the embedded default's settings name none).
REDIS_TRANSPORT = "readiness.broker:Transport"


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()


def test_a_broker_connection_collected_after_its_loss_closes_and_acks_with_connection_errors_only(
    redis_server: RedisServer,
) -> None:
    """Celery 5.7.0's steps on a connection loss, for a worker holding an unacknowledged message while
    its BRPOPs wait: collect() the connection, close it, and, when the task finishes (acks_late), ack
    the message. With kombu 5.7.0 alone the close raised ``AttributeError: 'NoneType' object has no
    attribute 'hostname'``, which ``ignore_errors`` lets through and Celery takes for a bug of its own:
    the worker exited. The second channel stands for the worker's others (remote control, gossip):
    collect() closes it first, the dead socket cuts that short, and the task channel's close is left
    for close(), after collect() detached the transport."""
    tasks = Queue("tasks", Exchange("tasks"), "tasks")
    with Connection(redis_server.url, transport=REDIS_TRANSPORT) as connection:
        connection.Producer().publish({"n": 1}, exchange=tasks.exchange, routing_key="tasks", declare=[tasks])
        received: list[Message] = []
        connection.Consumer(tasks, callbacks=[lambda body, message: received.append(message)]).consume()
        connection.drain_events(timeout=5)
        (message,) = received
        control = Queue("control", Exchange("control"), "control")
        connection.Consumer(control, channel=connection.channel(), callbacks=[]).consume()
        with pytest.raises(socket.timeout):
            connection.drain_events(timeout=0.2)  # nothing more: both BRPOPs stay in flight
        redis_server.stop()
        connection.collect()
        ignore_errors(connection, connection.close)
        with pytest.raises(connection.connection_errors):
            message.ack()


SETTINGS_PROBE = (
    "import ssl, django; django.setup(); from readiness.celery import app; "
    "checked = (app.conf.broker_use_ssl or {}).get('ssl_cert_reqs') == ssl.CERT_REQUIRED; "
    "print(app.conf.broker_transport, checked)"
)


@pytest.mark.parametrize(
    ("url", "transport", "certificate_checked"),
    [
        ("redis://127.0.0.1:6379/0", REDIS_TRANSPORT, False),
        ("rediss://127.0.0.1:6380/0", REDIS_TRANSPORT, True),
        ("amqp://guest@127.0.0.1:5672//", "None", False),
    ],
)
def test_a_redis_broker_gets_the_guarded_transport_and_rediss_checks_the_certificate(
    url: str, transport: str, certificate_checked: bool, tmp_path: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE_URL"))},
        "CELERY_BROKER_URL": url,
        "DJANGO_SETTINGS_MODULE": "readiness.settings",
        "READINESS_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", SETTINGS_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [transport, str(certificate_checked)]
