"""Daily partitions of the raw points table on PostgreSQL (PRODUCT.md §9).

``telemetry_metricpoint`` is range-partitioned on ``ts``, one partition per UTC day
(``telemetry_metricpoint_p20261207``) plus a DEFAULT partition for points outside every daily one (a
backfill older than the partitions made at migration, a clock far in the future). Retention then drops
whole days: no bulk DELETE, no bloat, no vacuum debt.

Our own small module rather than a tool: django-postgres-extra manages partitions only through its own
database backend (replacing Django's, which our COPY ingest path and every test runs on), and
pg_partman is a server extension that managed PostgreSQL offerings and the compose image do not all
ship. The whole job is three statements (create and attach a day, drop a day, delete from DEFAULT),
with the one subtlety below about rows already sitting in DEFAULT.

The table keeps Django's view of it: ``id`` is the model's primary key and still comes from the bigint
sequence, but PostgreSQL requires the partition key in a partitioned table's primary key, so the real
one is ``(id, ts)`` (migration 0008). SQLite keeps one plain table; everything here is a no-op there.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, time, timedelta

from django.db import DatabaseError, connection, transaction

logger = logging.getLogger(__name__)

TABLE = "telemetry_metricpoint"
DEFAULT_PARTITION = f"{TABLE}_default"
# Partitions made ahead of today: a week, so a beat or worker outage of up to a week never sends
# today's points into DEFAULT (where they would still be kept and found, only not dropped by day).
AHEAD_DAYS = 7
# Creating or dropping a partition needs a short exclusive lock on the table; waiting behind a long
# query would queue every insert behind us. Give up after this long: the next daily run tries again.
LOCK_TIMEOUT = "10s"
_DAY_SUFFIX = re.compile(rf"^{TABLE}_p(\d{{8}})$")
# The index an exact percentile's selection reads (``rollups.selection``: the points of a window inside a
# few value ranges). Only sealed partitions have it: the days that are over, and DEFAULT (history older
# than the partitions), each built once, in bulk, by the daily job (``partitions_value_indexed``).
# Today's partition, where every push lands, has none: an insert pays nothing for it (measured with it
# on every partition: COPY 37% slower), and a window's points of today are read by its ts range.
VALUE_INDEX_COLUMNS = "(project_id, metric, value, ts)"


def partition_name(day: date) -> str:
    return f"{TABLE}_p{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def is_partitioned() -> bool:
    """Whether the points table is partitioned here: on PostgreSQL after migration 0008."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def partition_tables() -> list[str]:
    """Every partition of the points table, DEFAULT included."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [TABLE],
        )
        return [name for (name,) in cursor.fetchall()]


def partition_days() -> list[date]:
    """The days that have a partition, oldest first."""
    days = []
    for name in partition_tables():
        match = _DAY_SUFFIX.match(name)
        if match:
            days.append(datetime.strptime(match[1], "%Y%m%d").date())
    return sorted(days)


def _literal(moment: datetime) -> str:
    # DDL takes no bind parameters; the bound is ours (a UTC midnight), never user input.
    return f"'{moment:%Y-%m-%d %H:%M:%S}+00'"


def partition_create(day: date) -> bool:
    """Make ``day``'s partition unless it exists; False when it did. Points of that day already in
    DEFAULT move into it: PostgreSQL refuses a new partition while DEFAULT holds rows of its range,
    so the day is built as a plain table, filled from DEFAULT, then attached, in one transaction."""
    name = partition_name(day)
    low, high = _literal(day_start(day)), _literal(day_start(day + timedelta(days=1)))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if cursor.fetchone()[0]:
            return False
        cursor.execute(f'CREATE TABLE "{name}" (LIKE "{TABLE}")')
        cursor.execute(
            f'WITH moved AS (DELETE FROM "{DEFAULT_PARTITION}" WHERE ts >= {low} AND ts < {high} '  # noqa: S608 -- our table names and UTC midnights
            f'RETURNING *) INSERT INTO "{name}" SELECT * FROM moved'
        )
        moved = cursor.rowcount
        # ATTACH rather than CREATE ... PARTITION OF: it takes a weaker lock on the parent (inserts and
        # queries go on), and builds the partition's copies of the table's indexes and key itself.
        cursor.execute(f'ALTER TABLE "{TABLE}" ATTACH PARTITION "{name}" FOR VALUES FROM ({low}) TO ({high})')
    if moved:
        logger.info("partition %s created with %d points moved from %s", name, moved, DEFAULT_PARTITION)
    return True


def partitions_ensure(*, start: date, end: date) -> list[str]:
    """Make the missing daily partitions from ``start`` to ``end`` (both included); their names."""
    created = []
    day = start
    while day <= end:
        if partition_create(day):
            created.append(partition_name(day))
        day += timedelta(days=1)
    return created


def partitions_ahead(*, now: datetime) -> list[str]:
    """Today's partition and the next AHEAD_DAYS (the daily job and every migrate call this)."""
    if not is_partitioned():
        return []
    today = now.astimezone(UTC).date()
    return partitions_ensure(start=today, end=today + timedelta(days=AHEAD_DAYS))


def value_index_name(partition: str) -> str:
    return f"{partition}_value"


def partitions_value_indexed(*, now: datetime) -> list[str]:
    """Build the value index of each sealed partition lacking a valid one: every day before ``now``'s,
    and DEFAULT; the partitions indexed. ``CONCURRENTLY``, so pushes and backfills go on, except inside
    a transaction, where PostgreSQL refuses it: there a plain build, which holds only that sealed day's
    writes while it runs. An invalid index (a concurrent build cut short) is dropped and built again."""
    if not is_partitioned():
        return []
    today = now.astimezone(UTC).date()
    sealed = [partition_name(day) for day in partition_days() if day < today] + [DEFAULT_PARTITION]
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY"
    built = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT class.relname, index.indisvalid FROM pg_class class "
            "JOIN pg_index index ON index.indexrelid = class.oid WHERE class.relname = ANY(%s)",
            [[value_index_name(partition) for partition in sealed]],
        )
        valid = dict(cursor.fetchall())
        for partition in sealed:
            name = value_index_name(partition)
            if valid.get(name):
                continue
            if name in valid:
                cursor.execute(f'DROP INDEX {concurrently} IF EXISTS "{name}"')
            cursor.execute(f'CREATE INDEX {concurrently} "{name}" ON "{partition}" {VALUE_INDEX_COLUMNS}')
            built.append(partition)
    if built:
        logger.info("value index built on %s", ", ".join(built))
    return built


def partitions_expired(*, before: datetime) -> list[date]:
    """The days whose whole partition lies before ``before`` (its last instant is older)."""
    return [day for day in partition_days() if day_start(day + timedelta(days=1)) <= before]


def partition_estimate(day: date) -> int:
    """The points in ``day``'s partition as PostgreSQL's statistics estimate them (counting would read
    them all); 0 before its first analyze."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [partition_name(day)],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def partition_drop(day: date) -> int | None:
    """Drop ``day``'s partition; the points it held (estimated), or None when the table stayed locked
    past LOCK_TIMEOUT (the next run drops it)."""
    name = partition_name(day)
    estimate = partition_estimate(day)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            cursor.execute(f'DROP TABLE IF EXISTS "{name}"')
    except DatabaseError as exc:
        logger.warning("partition %s not dropped (retried on the next run): %s", name, exc)
        return None
    return estimate
