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


def closed_minutes(
    points: Iterable[tuple[int, str, datetime]], *, now: datetime | None = None
) -> list[tuple[int, str, datetime]]:
    """The distinct (project id, metric, minute) of ``points`` (project id, metric, ts) whose minute has
    closed: what a writer marks, sorted."""
    open_minute = minute_of(now or timezone.now())
    return sorted(
        {
            (project_id, metric, minute)
            for project_id, metric, ts in points
            if (minute := minute_of(ts)) < open_minute
        }
    )


def rollups_mark(points: Iterable[tuple[int, str, datetime]], *, now: datetime | None = None) -> int:
    """Mark the closed minutes that ``points`` (project id, metric, ts) land in as dirty. Returns the
    number of distinct minutes marked (some may have been marked already)."""
    dirty = closed_minutes(points, now=now)
    if dirty:
        RollupDirtyMinute.objects.bulk_create(
            [RollupDirtyMinute(project_id=p, metric=m, minute=minute) for p, m, minute in dirty],
            ignore_conflicts=True,
            batch_size=1_000,
        )
    return len(dirty)


def copy_rows_points(project_id: int, rows: bytes) -> set[tuple[int, str, datetime]]:
    """(project id, metric, minute) of the COPY rows (metric, ts, value, labels) of an ingest batch,
    each once: what ``rollups_mark`` needs, at ~0.5 µs a row on the ingestion path.

    A ts is written by ``isoformat()``: "YYYY-MM-DDTHH:MM[:SS[.ffffff]]+HH:MM". Its first 16 characters
    and its offset fix its minute, so each distinct (metric, minute text, offset) is parsed once; a
    text of another shape (an offset with seconds) is parsed whole."""
    minutes: dict[tuple[bytes, bytes, bytes], datetime] = {}
    for line in rows.splitlines():
        metric, ts, _ = line.split(b"\t", 2)
        offset = ts[-6:]
        if offset[:1] in (b"+", b"-") and offset[3:4] == b":":
            key = (metric, ts[:16], offset)
            if key not in minutes:
                minutes[key] = datetime.fromisoformat((ts[:16] + offset).decode())
        else:
            minutes[(metric, ts, b"")] = datetime.fromisoformat(ts.decode())
    return {(project_id, metric.decode(), minute) for (metric, _, _), minute in minutes.items()}
