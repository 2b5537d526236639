"""Thin Celery tasks of ingestion."""

from __future__ import annotations

from celery import shared_task

from readiness.telemetry.services import batches_drain as drain_pending
from readiness.telemetry.services import batches_sweep


@shared_task(name="telemetry.batches_drain")
def batches_drain() -> int:
    applied, more = drain_pending()
    if more:
        batches_drain.delay()
    return applied


@shared_task(name="telemetry.sweep_batches")
def sweep_batches() -> int:
    return batches_sweep()
