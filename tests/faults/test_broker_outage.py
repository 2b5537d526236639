"""The broker goes away in the middle of a sustained push load and comes back: pushes keep getting
202 (the batch is in the database before the answer), and once broker and worker are back every
acknowledged point is stored exactly once."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from readiness.projects.services import token_create
from tests.factories import ProjectFactory
from tests.faults.conftest import Broker
from tests.faults.load import PHASE_BATCHES, PushLoad, run_phase
from tests.faults.pipeline import batch_size, ledger, pending_batches, sweep_as_if_a_minute_passed
from tests.servers import WebServer, Worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def supervise(worker: Worker) -> int:
    """Start the worker again if it exited, as a process supervisor would; returns 1 if it had.
    kombu's file-system transport ends the worker when its folder vanishes ("Unrecoverable error:
    FileNotFoundError"); on Redis the worker stays up and reconnects by itself."""
    if worker.process is not None and worker.process.poll() is None:
        return 0
    worker.start()
    return 1


def test_every_point_acknowledged_through_a_broker_outage_is_stored_exactly_once(
    broker: Broker, worker: Worker, web: WebServer, report: Callable[[str], None]
) -> None:
    project = ProjectFactory()
    _, secret = token_create(project=project, name="load", scopes=["metrics:write"])
    load = PushLoad(port=web.port, secret=secret, clients=4, size=batch_size())
    load.start()
    try:
        run_phase(load)
        broker.stop()
        during_outage = run_phase(load)  # still 202s: the broker is not on the acknowledgement path
        pending_at_restart = pending_batches()
        broker.start()
        restarts = supervise(worker)
        run_phase(load)
    finally:
        load.stop()
    restarts += supervise(worker)
    swept = sweep_as_if_a_minute_passed()
    started = time.monotonic()
    assert wait_for(lambda: pending_batches() == 0, timeout=120), f"{pending_batches()} batches never applied"
    figures = ledger(load, project.pk)
    figures.extra = {
        "acknowledged during the outage": during_outage,
        "batches pending when the broker came back": pending_at_restart,
        "overdue batches swept": swept,
        "seconds to apply the rest": round(time.monotonic() - started, 1),
        "worker restarts": restarts,
    }
    report(figures.line("broker outage"))
    load.assert_exactly_once(figures)
    assert during_outage >= PHASE_BATCHES * load.size
    assert set(figures.status_counts) == {"202"}  # an outage of the broker never reaches the client
    assert restarts == 0 or broker.url is None, "the worker died with its Redis broker"
