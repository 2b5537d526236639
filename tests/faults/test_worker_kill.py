"""kill -9 of the worker while it applies batches, under a sustained push load, three times over: the
killed transaction rolls back whole, a new worker applies the batches again, and nothing is lost or
stored twice."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from readiness.projects.services import token_create
from tests.factories import ProjectFactory
from tests.faults.load import PushLoad, run_phase
from tests.faults.pipeline import (
    applied_batches,
    apply_in_progress,
    batch_size,
    ledger,
    pending_batches,
    sweep_as_if_a_minute_passed,
)
from tests.servers import WebServer, Worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

KILLS = 3


def test_a_worker_killed_mid_batch_under_load_loses_and_duplicates_nothing(
    worker: Worker, web: WebServer, report: Callable[[str], None]
) -> None:
    project = ProjectFactory()
    _, secret = token_create(project=project, name="load", scopes=["metrics:write"])
    # Bigger batches: one apply transaction copies 20 of them (20,000 points on PostgreSQL), long
    # enough to be caught in.
    load = PushLoad(port=web.port, secret=secret, clients=3, size=2 * batch_size(), pause=0.1)
    load.start()
    mid_apply = 0
    try:
        for _ in range(KILLS):
            # Each worker first commits some batches, so the kills land in a pipeline in full swing
            # rather than in the first transaction of a worker just started.
            applied = applied_batches()
            assert wait_for(lambda n=applied: applied_batches() > n, timeout=90), "the worker applies nothing"
            # Polled fast: an apply transaction lasts a fraction of a second.
            mid_apply += wait_for(apply_in_progress, timeout=30, interval=0.005)
            worker.kill()  # SIGKILL: no chance to finish, commit, acknowledge or roll back by itself
            worker.start()
        run_phase(load, seconds=3.0)
    finally:
        load.stop()
    pending_after_load = pending_batches()
    swept = sweep_as_if_a_minute_passed()
    started = time.monotonic()
    assert wait_for(lambda: pending_batches() == 0, timeout=120), f"{pending_batches()} batches never applied"
    figures = ledger(load, project.pk)
    figures.extra = {
        "kills": KILLS,
        "kills inside an apply transaction": mid_apply,
        "batches pending after the load": pending_after_load,
        "overdue batches swept": swept,
        "seconds to apply the rest": round(time.monotonic() - started, 1),
    }
    report(figures.line("worker SIGKILL"))
    load.assert_exactly_once(figures)
    assert mid_apply >= 1, "no kill landed while the worker was applying batches"
    assert set(figures.status_counts) == {"202"}
    assert worker.starts == KILLS + 1
