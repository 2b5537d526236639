"""Pulls run on their own Celery queue, and every deployment's workers consume it."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from readiness.celery import app
from tests.servers import COMPOSE, PROCFILE, celery_arguments, compose_worker_services, consumed_queues


def test_the_pull_task_and_its_beat_tick_go_to_the_pulls_queue() -> None:
    assert app.amqp.router.route({}, "telemetry.pull_sources")["queue"].name == "pulls"
    tick = settings.CELERY_BEAT_SCHEDULE["pull-metric-sources"]
    assert tick["task"] == "telemetry.pull_sources" and tick["options"]["queue"] == "pulls"
    # Ingestion has a queue of its own, never behind a slow source.
    assert app.amqp.router.route({}, "telemetry.batches_drain")["queue"].name == "ingestion"


@pytest.mark.parametrize("deployment", [PROCFILE, COMPOSE])
def test_every_deployment_runs_a_worker_consuming_pulls(deployment: str, tmp_path: Path) -> None:
    services = ["worker"] if deployment == PROCFILE else compose_worker_services()
    consumed = [consumed_queues(celery_arguments(deployment, name, state_dir=tmp_path)) for name in services]
    assert any("pulls" in queues for queues in consumed)
