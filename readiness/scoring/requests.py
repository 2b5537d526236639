"""Asking for an evaluation: every trigger (applied metrics, a health-check flip, a stored drift
result, the periodic tick) goes through ``evaluation_request``, which coalesces bursts into one task.

Telemetry sits below scoring (pyproject.toml's import contracts), so it does not call this itself: it
sends ``project_evidence_changed`` (readiness/telemetry/signals.py), which ``ScoringConfig.ready``
connects here.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from readiness.projects.models import LOST_EVALUATION_REQUEST, Project, evaluation_flip_statement
from readiness.publishing import publish


class _RecentFlips:
    """The projects whose evaluation this process queued moments ago, and until when that evaluation
    surely has not started: a request before then rides along without asking the database.

    An evaluation clears ``evaluation_pending`` when it starts, and one queued with a delay starts no
    sooner than that delay after the commit that flipped the flag. So until then the flag is still
    set, and the conditional UPDATE would change nothing: at single-point pushes of hundreds a second
    on one project that UPDATE was one statement in six of every push. Half the delay is kept as a
    margin for the asking transaction to commit before the evaluation reads the data; a commit later
    than that waits for the next trigger or the periodic tick, as one racing the UPDATE would.
    """

    def __init__(self) -> None:
        self.until: dict[int, float] = {}
        self.lock = threading.Lock()

    def covers(self, project_id: int) -> bool:
        return time.monotonic() < self.until.get(project_id, 0.0)

    def record(self, project_id: int, delay: float) -> None:
        with self.lock:
            now = time.monotonic()
            if len(self.until) > RECENT_FLIPS_KEPT:  # forget the expired ones; bounded memory
                self.until = {pk: until for pk, until in self.until.items() if until > now}
            self.until[project_id] = now + delay / 2


RECENT_FLIPS_KEPT = 10_000
recent_flips = _RecentFlips()


def evaluation_request(*, project_id: int, delay: float = 1.0) -> bool:
    """Queue one re-evaluation of a project, coalescing bursts: only the request that flips
    ``evaluation_pending`` enqueues; the rest ride along. Returns whether this call enqueued."""
    if recent_flips.covers(project_id):
        return False
    # Under single-point pushes the flag is mostly set already and the UPDATE changes nothing; the
    # ORM's compilation of it was half of its CPU in a profile of the push path, hence the raw SQL.
    with connection.cursor() as cursor:
        cursor.execute(*evaluation_flip_statement(project_id=project_id, now=timezone.now()))
        # The returned row, not rowcount: SQLite counts an UPDATE ... RETURNING's rows only once they
        # are fetched (rowcount 0 before), so on the embedded default no request ever queued.
        flipped = cursor.fetchone() is not None
    if flipped:
        evaluation_queue(project_id=project_id, delay=delay)
    return bool(flipped)


def evaluation_queue(*, project_id: int, delay: float = 1.0) -> None:
    """Queue the evaluation of a project whose request the caller's statement just flipped
    (``evaluation_flip_statement`` returned its id), once that statement's transaction commits."""
    transaction.on_commit(lambda: _enqueue(project_id=project_id, delay=delay))


def _enqueue(*, project_id: int, delay: float) -> None:
    from readiness.scoring.tasks import project_evaluate

    # Recorded before publishing: the evaluation is due no sooner than ``delay`` from here (an eager
    # Celery, as in some tests, runs it at once).
    if delay > 0 and not project_evaluate.app.conf.task_always_eager:
        recent_flips.record(project_id, delay)
    # Runs after commit: the request is recorded (evaluation_pending), so a broker outage must not fail
    # the push or probe cycle that asked; the lost-request rule queues it again later.
    publish(
        project_evaluate, what=f"the evaluation of project {project_id}", args=(project_id,), countdown=delay
    )


def evaluations_request(*, project_ids: list[int], delay: float = 1.0) -> int:
    """``evaluation_request`` for many projects at once (a pull cycle's): two statements instead of one
    UPDATE each, whose waits add up over hundreds of projects. The flipped rows stay locked until the
    caller's transaction commits, so a concurrent request sees them pending and rides along. Returns
    how many were enqueued."""
    now = timezone.now()
    with transaction.atomic():
        flipped = list(
            Project.objects.select_for_update()
            .filter(pk__in=project_ids)
            .filter(
                Q(evaluation_pending=False) | Q(evaluation_requested_at__lt=now - LOST_EVALUATION_REQUEST)
            )
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        Project.objects.filter(pk__in=flipped).update(evaluation_pending=True, evaluation_requested_at=now)
    for project_id in flipped:
        transaction.on_commit(lambda project_id=project_id: _enqueue(project_id=project_id, delay=delay))
    return len(flipped)


def evidence_changed_receiver(
    *,
    project_id: int | None = None,
    project_ids: list[int] | None = None,
    evaluation_requested: bool | None = None,
    **_signal: Any,
) -> None:
    """``project_evidence_changed``: new metric points or a health-check flip may change the decision."""
    if project_id is not None:
        if evaluation_requested is None:
            evaluation_request(project_id=project_id)
        elif evaluation_requested:
            # The sender ran evaluation_flip_statement with its write, and it flipped the flag.
            evaluation_queue(project_id=project_id)
    if project_ids:
        evaluations_request(project_ids=project_ids)
