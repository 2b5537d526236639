"""Thin Celery tasks of ingestion."""

from __future__ import annotations

from celery import shared_task

from readiness.telemetry.services import batches_apply, batches_sweep


@shared_task(name="telemetry.batch_process")
def batch_process(batch_id: str) -> int:
    return batches_apply(first=batch_id)


@shared_task(name="telemetry.sweep_batches")
def sweep_batches() -> int:
    return batches_sweep()
