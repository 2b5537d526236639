"""The daily retention job (PRODUCT.md §9): raw points older than ``READINESS_RAW_RETENTION_DAYS`` go,
rollups older than ``READINESS_ROLLUP_RETENTION_DAYS`` go.

On PostgreSQL the points table is partitioned by day (readiness/telemetry/partitions.py): a day whose
last instant is past retention is dropped whole, which costs the same for ten points or ten million and
leaves nothing for vacuum to clean. Points that sit in the DEFAULT partition (history older than the
partitions made at migration, a backfill of a day already dropped) are deleted row by row, in batches.
SQLite, the embedded default, has one table: a batched DELETE, each batch its own short transaction so
web and workers writing the same file never wait long for its lock.

So on PostgreSQL a point may outlive retention by up to a day (its day is dropped once wholly past);
nothing is ever removed before its time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Subquery

from readiness.telemetry import partitions
from readiness.telemetry.models import MetricPoint, MetricRollup
from readiness.telemetry.rollups.fold import rollups_prune

logger = logging.getLogger(__name__)

# Rows per DELETE: a batch of 10,000 holds the write lock well under a second on SQLite, and keeps a
# PostgreSQL transaction's WAL and locks small while a large DEFAULT partition drains.
DELETE_BATCH = 10_000


@dataclass
class RetentionResult:
    """What one run removed (or, with ``dry_run``, would remove)."""

    raw_before: datetime
    rollups_before: datetime
    dry_run: bool = False
    # PostgreSQL: the daily partitions dropped, with PostgreSQL's estimate of the points each held.
    partitions_dropped: dict[str, int] = field(default_factory=dict)
    # Partitions past retention left for the next run: the table stayed locked past the lock timeout.
    partitions_left: list[str] = field(default_factory=list)
    # Points deleted one by one: SQLite's table, or PostgreSQL's DEFAULT partition.
    points_deleted: int = 0
    # Minute and hour rollup rows older than rollup retention (deleted in batches: a small table).
    rollups_deleted: int = 0
    partitions_created: list[str] = field(default_factory=list)
    # Sealed partitions (days over, DEFAULT) given their value index (``partitions.VALUE_INDEX_COLUMNS``).
    partitions_indexed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verb = "would drop" if self.dry_run else "dropped"
        dropped = ", ".join(self.partitions_dropped) or "no partitions"
        estimate = sum(self.partitions_dropped.values())
        line = (
            f"raw points before {self.raw_before:%Y-%m-%d %H:%M} UTC: {verb} {dropped} (~{estimate} points), "
            f"{'would delete' if self.dry_run else 'deleted'} {self.points_deleted} points one by one"
        )
        if self.partitions_left:
            line += f"; left locked for the next run: {', '.join(self.partitions_left)}"
        if self.partitions_created:
            line += f"; created {', '.join(self.partitions_created)}"
        if self.partitions_indexed:
            line += f"; value index built on {', '.join(self.partitions_indexed)}"
        verb = "would delete" if self.dry_run else "deleted"
        before = f"{self.rollups_before:%Y-%m-%d %H:%M}"
        line += f"; rollups before {before} UTC: {verb} {self.rollups_deleted} rows"
        return line


def retention_apply(*, now: datetime, dry_run: bool = False) -> RetentionResult:
    """Remove raw points older than raw retention (and make the partitions of the week ahead), and
    rollups older than rollup retention."""
    result = RetentionResult(
        raw_before=now - timedelta(days=settings.READINESS_RAW_RETENTION_DAYS),
        rollups_before=now - timedelta(days=settings.READINESS_ROLLUP_RETENTION_DAYS),
        dry_run=dry_run,
    )
    if partitions.is_partitioned():
        _partitions_apply(result, now=now)
    else:
        result.points_deleted = points_delete_before(before=result.raw_before, dry_run=dry_run)
    if dry_run:
        result.rollups_deleted = MetricRollup.objects.filter(start__lt=result.rollups_before).count()
    else:
        result.rollups_deleted = rollups_prune(before=result.rollups_before)
    logger.info("retention: %s", result.summary())
    return result


def _partitions_apply(result: RetentionResult, *, now: datetime) -> None:
    # Ahead first: a run that fails later still leaves tomorrow's partition in place.
    if not result.dry_run:
        result.partitions_created = partitions.partitions_ahead(now=now)
    for day in partitions.partitions_expired(before=result.raw_before):
        name = partitions.partition_name(day)
        if result.dry_run:
            result.partitions_dropped[name] = partitions.partition_estimate(day)
            continue
        estimate = partitions.partition_drop(day)
        if estimate is None:
            result.partitions_left.append(name)
        else:
            result.partitions_dropped[name] = estimate
    result.points_deleted = _default_delete(before=result.raw_before, dry_run=result.dry_run)
    if not result.dry_run:
        # Last: only the days that stay are indexed, and yesterday is sealed by now.
        result.partitions_indexed = partitions.partitions_value_indexed(now=now)


def _default_delete(*, before: datetime, dry_run: bool) -> int:
    """Delete the DEFAULT partition's points older than ``before``, in batches; how many."""
    table = partitions.DEFAULT_PARTITION
    with connection.cursor() as cursor:
        if dry_run:
            cursor.execute(f'SELECT count(*) FROM "{table}" WHERE ts < %s', [before])  # noqa: S608 -- our partition
            return cursor.fetchone()[0]
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f'DELETE FROM "{table}" WHERE ctid IN (SELECT ctid FROM "{table}" WHERE ts < %s LIMIT %s)',  # noqa: S608
                [before, DELETE_BATCH],
            )
            deleted += cursor.rowcount
        if cursor.rowcount < DELETE_BATCH:
            return deleted


def points_delete_before(*, before: datetime, dry_run: bool = False) -> int:
    """Delete the points older than ``before`` from the one plain table (SQLite), in batches."""
    old = MetricPoint.objects.filter(ts__lt=before)
    if dry_run:
        return old.count()
    deleted = 0
    while True:
        # One statement per batch (DELETE ... WHERE id IN (SELECT id ... LIMIT n)): its own transaction.
        count, _ = MetricPoint.objects.filter(id__in=Subquery(old.values("id")[:DELETE_BATCH])).delete()
        deleted += count
        if count < DELETE_BATCH:
            return deleted
