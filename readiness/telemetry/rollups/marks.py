"""Late points: every writer of MetricPoint rows calls ``rollups_mark`` in the transaction that writes
them, so a point landing in a minute that has already closed gets that minute re-folded.

Why "closed at write time" and not "before the fold's watermark": the fold may be folding that very
minute while this transaction is still open, and would not see its points; marking every closed minute
makes the mark commit with the points, whichever commits first. Points of the still-open minute need no
mark: the fold waits ``fold.GRACE`` after a minute closes, longer than any write transaction runs.
Marks of minutes the fold has not reached yet cost one row, dropped by the next fold.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from django.utils import timezone

from readiness.telemetry.models import RollupDirtyMinute


def minute_of(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(second=0, microsecond=0)


def rollups_mark(points: Iterable[tuple[int, str, datetime]], *, now: datetime | None = None) -> int:
    """Mark the closed minutes that ``points`` (project id, metric, ts) land in as dirty. Returns the
    number of distinct minutes marked (some may have been marked already)."""
    open_minute = minute_of(now or timezone.now())
    dirty = {
        (project_id, metric, minute)
        for project_id, metric, ts in points
        if (minute := minute_of(ts)) < open_minute
    }
    if dirty:
        RollupDirtyMinute.objects.bulk_create(
            [RollupDirtyMinute(project_id=p, metric=m, minute=minute) for p, m, minute in sorted(dirty)],
            ignore_conflicts=True,
            batch_size=1_000,
        )
    return len(dirty)


def copy_rows_points(project_id: int, rows: bytes) -> Iterable[tuple[int, str, datetime]]:
    """(project id, metric, ts) of each COPY row (metric, ts, value, labels) of an ingest batch."""
    for line in rows.splitlines():
        metric, ts, _ = line.split(b"\t", 2)
        yield project_id, metric.decode(), datetime.fromisoformat(ts.decode())
