"""What the fault tests read back from this test's database: the stored points, the batches still
pending, and whether a worker is in the middle of applying batches right now."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import Count, Sum

from readiness.telemetry.models import IngestBatch, MetricPoint
from readiness.telemetry.services import DIRECT_MAX_POINTS, batches_sweep
from tests.faults.load import Figures, PushLoad


def batch_size() -> int:
    """Points per pushed batch, enough for the outbox (the worker applies them): SQLite applies them
    ten times slower than PostgreSQL's COPY, so the embedded default runs the same faults on a fifth
    of the volume."""
    return 500 if connection.vendor == "postgresql" else DIRECT_MAX_POINTS + 1


def ledger(load: PushLoad, project_id: int) -> Figures:
    points = MetricPoint.objects.filter(project_id=project_id)
    totals = points.aggregate(n=Count("id"), total=Sum("value"))
    values = list(points.values_list("value", flat=True))
    return load.ledger(values, db_count=totals["n"], db_sum=float(totals["total"] or 0))


def pending_batches() -> int:
    return IngestBatch.objects.filter(state=IngestBatch.State.PENDING).count()


def applied_batches() -> int:
    return IngestBatch.objects.filter(state=IngestBatch.State.DONE).count()


def sweep_as_if_a_minute_passed() -> int:
    # Beat runs the sweeper every 30 s; here it is called directly, as beat would a minute on.
    return batches_sweep(now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2))


# The statements only a worker's apply transaction runs (claim, read rows, copy, mark done); the web
# processes only INSERT batches and read them back for idempotent replays.
APPLYING_SQL = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
  AND (query ILIKE '%FOR UPDATE SKIP LOCKED%'
       OR query ILIKE 'SELECT "telemetry_ingestbatch"."id", "telemetry_ingestbatch"."rows"%'
       OR query ILIKE 'COPY telemetry_metricpoint%'
       OR query ILIKE 'UPDATE "telemetry_ingestbatch" SET "state"%')
"""


def apply_in_progress() -> bool:
    """A worker holds an open transaction applying batches (locked them, or is copying their
    points). PostgreSQL shows it in pg_stat_activity; on SQLite the best sign is batches both done
    and pending while a load runs."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(APPLYING_SQL)
            return cursor.fetchone()[0] > 0
    states = set(IngestBatch.objects.values_list("state", flat=True).distinct())
    return states == {IngestBatch.State.PENDING, IngestBatch.State.DONE}
