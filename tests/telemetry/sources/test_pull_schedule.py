"""Pulls run on their own Celery queue, and every deployment's workers consume it."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from readiness.celery import app
from tests.servers import COMPOSE, PROCFILE, celery_arguments


def test_the_pull_task_and_its_beat_tick_go_to_the_pulls_queue() -> None:
    assert app.amqp.router.route({}, "telemetry.pull_sources")["queue"].name == "pulls"
    tick = settings.CELERY_BEAT_SCHEDULE["pull-metric-sources"]
    assert tick["task"] == "telemetry.pull_sources" and tick["options"]["queue"] == "pulls"
    # Ingestion stays on the default queue, never behind a slow source.
    assert app.amqp.router.route({}, "telemetry.batches_drain")["queue"].name == "celery"


@pytest.mark.parametrize("deployment", [PROCFILE, COMPOSE])
def test_every_deployment_worker_consumes_pulls_and_the_default_queue(
    deployment: str, tmp_path: Path
) -> None:
    arguments = celery_arguments(deployment, "worker", state_dir=tmp_path)
    [queues] = [a.split("=", 1)[1] for a in arguments if a.startswith("--queues=")]
    assert set(queues.split(",")) == {"celery", "pulls"}
