"""Thin Celery tasks of ingestion, health checks and pull sources."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from readiness.telemetry.healthchecks import healthchecks_run
from readiness.telemetry.partitions import partitions_value_indexed
from readiness.telemetry.pulls import pulls_run
from readiness.telemetry.retention import retention_apply
from readiness.telemetry.rollups.fold import rollups_fold
from readiness.telemetry.services import batches_drain as drain_pending
from readiness.telemetry.services import batches_sweep


# A drain applies batches for DRAIN_BUDGET (10 s), then at most one more transaction of <= 50,000
# points (about a second), then yields. A minute means a stuck database; killed, the open transaction
# rolls back, the batches stay pending, and the sweeper re-enqueues them.
@shared_task(name="telemetry.batches_drain", soft_time_limit=60, time_limit=75)
def batches_drain() -> int:
    applied, more = drain_pending()
    if more:
        batches_drain.delay()
    return applied


# One indexed count and at most one message: milliseconds. The limits stay below the 30 s interval,
# so a sweep stuck on the database never overlaps the next one.
@shared_task(name="telemetry.sweep_batches", soft_time_limit=20, time_limit=25)
def sweep_batches() -> int:
    return batches_sweep()


# Above the worst cycle: 10 rounds of probes (see CLAIM_ROUNDS), each timing out at the 30 s cap: 300 s.
# A cycle killed by the limit loses only its results: its targets were claimed, so they are due again
# one interval later.
@shared_task(name="telemetry.run_health_checks", soft_time_limit=330, time_limit=360)
def run_health_checks() -> int:
    return healthchecks_run().probed


# Above the worst cycle: 10 rounds of sources (see pulls.CLAIM_ROUNDS), each timing out at 10 s: 100 s.
# A cycle killed by the limit loses only its reads: its sources were claimed, so they are due again
# one interval later, and the next pull starts from the last point stored, so nothing is lost.
# Routed to the ``pulls`` queue (settings.CELERY_TASK_ROUTES): a slow source never delays ingestion or
# probes.
@shared_task(name="telemetry.pull_sources", soft_time_limit=130, time_limit=150)
def pull_sources() -> int:
    return pulls_run().pulled


# Dropping a day's partition takes milliseconds (each waits at most 10 s for its lock); what may take
# minutes is the batched DELETE of a large DEFAULT partition after migrating years of history, or of
# SQLite's table. Killed, it loses nothing: each batch committed, and the next day's run goes on.
@shared_task(name="telemetry.apply_retention", soft_time_limit=1800, time_limit=1860)
def apply_retention() -> int:
    return retention_apply(now=timezone.now()).points_deleted


# A build reads its whole partition (a day of a large fleet: minutes), and a day that ends while the
# previous run still builds waits for the next: the limits stay under the hourly interval. Killed, a
# CONCURRENTLY build leaves an invalid index, which the next run drops and builds again.
@shared_task(name="telemetry.seal_partitions", soft_time_limit=3000, time_limit=3060)
def seal_partitions() -> int:
    return len(partitions_value_indexed(now=timezone.now()))


# A run folds for at most FOLD_BUDGET seconds, then at most one more transaction (a chunk of at most
# ~200,000 points: seconds), well inside the limits, which stay below the 60 s interval. Killed, the
# open chunk's transaction rolls back and the watermark stays where it was: the next run folds it again.
FOLD_BUDGET = 25.0


@shared_task(name="telemetry.fold_rollups", soft_time_limit=50, time_limit=55)
def fold_rollups() -> int:
    return rollups_fold(now=timezone.now(), budget=FOLD_BUDGET)
