"""Thin Celery tasks of scoring: take ids, fetch, call a service."""

from __future__ import annotations

from celery import shared_task

from readiness.projects.models import Project
from readiness.scoring.services import scorecard_refresh


@shared_task(name="scoring.project_evaluate")
def project_evaluate(project_id: int) -> str | None:
    # Clear the coalescing flag before evaluating: data arriving during this evaluation queues another.
    Project.objects.filter(pk=project_id, evaluation_pending=True).update(evaluation_pending=False)
    project = Project.objects.filter(pk=project_id).first()
    if project is None:  # deleted since it was enqueued
        return None
    return scorecard_refresh(project=project).decision


@shared_task(name="scoring.evaluate_active_projects")
def evaluate_active_projects() -> int:
    """Windows move, attestations and waivers expire, data goes stale: re-evaluate every active
    project periodically, one task each so one slow project never delays the others."""
    ids = list(Project.objects.active().values_list("pk", flat=True))
    for project_id in ids:
        project_evaluate.delay(project_id)
    return len(ids)
