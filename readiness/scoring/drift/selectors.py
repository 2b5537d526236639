"""Reads of stored drift results. They never compute and never write: a criterion without a stored
result reads as having none (``drift.jobs`` is where results are computed and stored).

Two readers, one rule for which row counts. The evaluation reads, at its ``now``, the newest result
computed within ``DRIFT_RESULT_MAX_AGE`` for the criterion's current definition
(``drift_results_usable``). The scorecard page's drift chart reads the row that the stored scorecard's
evaluation read (``drift_results_of_scorecard``), so the chart's bins and figure are the PSI or KS
p-value the scorecard shows, however many job runs came since.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from django.db.models import QuerySet

from readiness.scoring.drift.models import DriftResult, definition_fingerprint
from readiness.scoring.models import Criterion

# The evaluation trusts a stored result for this long. The job runs every 10 minutes by default, so a
# result an hour old means several runs were missed (beat stopped, the job failing): the evaluation's
# ensure step (``drift.jobs.drift_results_ensure``) then computes one rather than judge on stale drift.
DRIFT_RESULT_MAX_AGE = timedelta(hours=1)


def _recent(criterion_ids: Iterable[int], at: datetime) -> QuerySet[DriftResult]:
    """The results an evaluation at ``at`` may have read, newest first (ties: the last stored)."""
    return DriftResult.objects.filter(
        criterion_id__in=list(criterion_ids), computed_at__lte=at, computed_at__gt=at - DRIFT_RESULT_MAX_AGE
    ).order_by("-computed_at", "-id")


def drift_results_usable(*, criteria: Iterable[Criterion], now: datetime) -> dict[int, DriftResult]:
    """Criterion id → the newest stored result the evaluation may use at ``now``: computed at or before
    it, within ``DRIFT_RESULT_MAX_AGE``, for the criterion's current definition. One query (none
    without criteria); the bins stay in the database, the evaluation needs only the figure."""
    wanted = {criterion.pk: definition_fingerprint(criterion) for criterion in criteria}
    if not wanted:
        return {}
    usable: dict[int, DriftResult] = {}
    for result in _recent(wanted, now).defer("bins"):
        if result.criterion_id not in usable and result.definition == wanted[result.criterion_id]:
            usable[result.criterion_id] = result
    return usable


def drift_results_of_scorecard(
    *, criteria: Iterable[Criterion], computed_at: datetime, as_of: Mapping[int, datetime | None]
) -> dict[int, DriftResult]:
    """Criterion id → the stored result (bins included) that the evaluation of a scorecard computed at
    ``computed_at`` read. One query (none without criteria).

    ``as_of`` maps a criterion id to the ``as_of`` its scorecard entry records: for a measured drift
    value that is the result's own ``computed_at``, which names the row even when the criterion's
    definition changed since without a new scorecard (statuses unchanged, same digest). A criterion the
    scorecard found ``missing`` records no ``as_of``; its row is the one the evaluation read then, the
    newest usable at ``computed_at`` for the current definition. A row pruned by retention is absent.
    """
    wanted = {criterion.pk: definition_fingerprint(criterion) for criterion in criteria}
    if not wanted:
        return {}
    read: dict[int, DriftResult] = {}
    for result in _recent(wanted, computed_at):
        pk = result.criterion_id
        if pk in read:
            continue
        moment = as_of.get(pk)
        if (moment is not None and result.computed_at == moment) or (
            moment is None and result.definition == wanted[pk]
        ):
            read[pk] = result
    return read
