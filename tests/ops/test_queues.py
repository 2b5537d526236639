"""Each kind of background work on its own Celery queue (PRODUCT.md §9), and every deployment's
workers together consuming every queue: a queue no worker consumes would hold its tasks for ever."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from readiness.celery import app
from tests.servers import (
    COMPOSE,
    PROCFILE,
    celery_arguments,
    compose_worker_services,
    consumed_queues,
)

# Which queue each task goes to: ingestion, evaluation, probes, pulls and notifications apart.
ROUTES = {
    "telemetry.batches_drain": "ingestion",
    "telemetry.sweep_batches": "ingestion",
    "telemetry.fold_rollups": "ingestion",
    "telemetry.apply_retention": "ingestion",
    "telemetry.seal_partitions": "ingestion",
    "scoring.project_evaluate": "evaluation",
    "scoring.evaluate_active_projects": "evaluation",
    "scoring.compute_drift": "evaluation",
    "telemetry.run_health_checks": "probes",
    "telemetry.pull_sources": "pulls",
    "alerts.delivery_send": "notifications",
    "alerts.sweep_deliveries": "notifications",
    "alerts.scan_expiring": "notifications",
    "alerts.send_digests": "notifications",
}


def routed_queues() -> set[str]:
    """Every queue a task can land on: the routes' and the default one."""
    return {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} | {app.conf.task_default_queue}


def test_every_task_goes_to_the_queue_of_its_kind() -> None:
    app.loader.import_default_modules()  # the tasks' modules, so none is left unlisted here
    ours = {name for name in app.tasks if not name.startswith("celery.")}
    assert ours == set(ROUTES), "a task without a queue of its kind: add it to CELERY_TASK_ROUTES"
    assert {name: app.amqp.router.route({}, name)["queue"].name for name in ROUTES} == ROUTES


def test_every_periodic_job_goes_to_a_declared_queue() -> None:
    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        queue = (
            entry.get("options", {}).get("queue") or app.amqp.router.route({}, entry["task"])["queue"].name
        )
        assert queue in declared and queue == ROUTES[entry["task"]], name


def test_every_routed_queue_is_declared() -> None:
    assert routed_queues() <= {queue.name for queue in settings.CELERY_TASK_QUEUES}


def test_the_procfile_runs_one_worker_consuming_every_queue(tmp_path: Path) -> None:
    assert consumed_queues(celery_arguments(PROCFILE, "worker", state_dir=tmp_path)) >= routed_queues()


def test_compose_runs_a_worker_per_queue_group_and_together_they_consume_every_queue(
    tmp_path: Path,
) -> None:
    services = compose_worker_services()
    assert set(services) == {"worker-ingest", "worker-evaluate", "worker-probes", "worker-notify"}
    consumed = {
        name: consumed_queues(celery_arguments(COMPOSE, name, state_dir=tmp_path)) for name in services
    }
    assert set().union(*consumed.values()) >= routed_queues()
    # A group apart from the others: evaluations never wait behind pushes, pulls or webhooks.
    assert consumed["worker-evaluate"] == {"evaluation"}
    assert consumed["worker-notify"] == {"notifications"}
    assert consumed["worker-probes"] == {"probes", "pulls"}


@pytest.mark.parametrize("deployment", [PROCFILE, COMPOSE])
def test_the_worker_tests_start_consumes_every_queue(deployment: str, tmp_path: Path) -> None:
    """Tests that need "the deployed worker" start one process; it must do every kind of work."""
    assert consumed_queues(celery_arguments(deployment, "worker", state_dir=tmp_path)) >= routed_queues()
