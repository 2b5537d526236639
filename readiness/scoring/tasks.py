"""Thin Celery tasks of scoring: take ids, fetch, call a service.

Every task carries a soft time limit (raises inside the task, which rolls back its open transaction)
and a hard one a little later (the worker process is killed): a hung database call or a pathological
criterion must never hold a worker forever. Each limit says why it is what it is.
"""

from __future__ import annotations

from celery import shared_task

from readiness.projects.models import Project
from readiness.scoring.drift.jobs import drift_results_compute
from readiness.scoring.requests import evaluation_request
from readiness.scoring.services import scorecard_refresh


# One evaluation reads a handful of aggregates and stored drift results: well under a second, a few
# seconds when a drift criterion must be computed inline on a large window. A minute means something is
# stuck; cut there, the project row lock is released with the rolled-back transaction and the
# coalescing flag is already cleared, so the next trigger or periodic tick evaluates it again.
@shared_task(name="scoring.project_evaluate", soft_time_limit=60, time_limit=75)
def project_evaluate(project_id: int) -> str | None:
    # Clear the coalescing flag before evaluating: data arriving during this evaluation queues another,
    # which then waits for this one on the project row lock (scorecard_refresh): never two at once.
    Project.objects.filter(pk=project_id, evaluation_pending=True).update(evaluation_pending=False)
    project = Project.objects.filter(pk=project_id).first()
    if project is None:  # deleted since it was enqueued
        return None
    return scorecard_refresh(project=project).decision


# One conditional UPDATE and at most one message per project: about a millisecond each, so even
# 10,000 projects fit well inside a minute, and the limits stay below the 5-minute interval. A tick
# cut short leaves the rest for the next one.
@shared_task(name="scoring.evaluate_active_projects", soft_time_limit=60, time_limit=75)
def evaluate_active_projects() -> int:
    """Windows move, attestations and waivers expire, data goes stale: re-evaluate every active
    project periodically, one task each so one slow project never delays the others.

    Coalesced like every other trigger (``evaluation_pending``): a project whose evaluation is already
    queued is not queued again, so a burst of ticks (a backlog, two beats) costs one evaluation each.
    Returns how many evaluations this tick queued."""
    ids = list(Project.objects.active().values_list("pk", flat=True))
    # No countdown: a tick is not a burst to wait out, and an ETA message would sit in a worker's memory.
    return sum(evaluation_request(project_id=project_id, delay=0) for project_id in ids)


# 100 criteria of 10,000 + 10,000 samples take about 2 s (bench/drift.py); 4 minutes leaves room for
# thousands of criteria, a cold reference cache and a loaded database, and stays below the 10-minute
# interval so runs never pile up. A run cut short keeps the chunks it stored; the next starts with
# the criteria it did not reach.
@shared_task(name="scoring.compute_drift", soft_time_limit=240, time_limit=270)
def compute_drift() -> int:
    return drift_results_compute().computed
