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
import time as clock
from collections.abc import Iterator
from contextlib import contextmanager
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
# than the partitions), each built once, in bulk, by the sealing job (``partitions_value_indexed``).
# Today's partition, where every push lands, has none: an insert pays nothing for it (measured with it
# on every partition: COPY 37% slower), and a window's points of today are read by its ts range.
VALUE_INDEX_COLUMNS = "(project_id, metric, value, ts)"
# Today's hours that are over are sealed too, in segments: every SEGMENT_HOURS the job builds a partial
# value index over the segment just over (``WHERE ts >= 06:00 AND ts < 12:00``), so a window reads at
# most the last few hours of today in full, not the whole day (late in the UTC day, most of a 24-hour
# window). A push of now lies outside every segment's hours: the partial indexes cost it nothing. Six
# hours because a partial build still reads the whole partition so far: the day's three segment builds
# read 6, 12 and 18 hours of rows (twice each when CONCURRENTLY), besides the day's whole index, which
# replaces them when the day is over.
SEGMENT_HOURS = 6
_VALUE_INDEX = re.compile(rf"^({TABLE}_(?:p\d{{8}}|default))_value(?:_(\d\d)(\d\d))?$")
# Two sealing runs at once (the hourly job and the daily retention's last step) would each take the
# other's index under construction for one a crash left invalid, and drop it: one runs, the other skips.
SEALING_LOCK = 7_310_142_911  # a pg_try_advisory_lock key, ours alone
# How long a process plans selections from the value indexes it last read in the catalog. The catalog
# changes once an hour (the sealing job) and a stale read only costs speed, never a value: a span read
# without its index, or a gap read in full, returns the same points (``value_indexed_spans``). At a
# re-evaluation cycle's pace (two selections a project, a project every 40 ms), read per selection it
# was two of a project's 22 queries.
SPANS_CATALOG_SECONDS = 60.0
# (when it was read, on time.monotonic's clock; each partition's valid value indexes)
_spans_catalog: tuple[float, dict[str, set[str]]] | None = None


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
    value_indexes_forget()
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


def segment_hours() -> list[tuple[int, int]]:
    """The hours (from, to) of a day's segments; its last SEGMENT_HOURS wait for the day's whole index."""
    return [(hour, hour + SEGMENT_HOURS) for hour in range(0, 24 - SEGMENT_HOURS, SEGMENT_HOURS)]


def segment_index_name(partition: str, hours: tuple[int, int]) -> str:
    return f"{partition}_value_{hours[0]:02d}{hours[1]:02d}"


def segment_bounds(day: date, hours: tuple[int, int]) -> tuple[datetime, datetime]:
    start = day_start(day)
    return start + timedelta(hours=hours[0]), start + timedelta(hours=hours[1])


def partitions_value_indexed(*, now: datetime) -> list[str]:
    """Seal what ``now`` has closed: build the value index of each sealed partition lacking a valid one
    (every day before ``now``'s, and DEFAULT) and of each of today's segments that is over, then drop
    the segments of a day whose whole index is valid. Returns what was built: a partition's name, or
    "<partition> 06:00-12:00" for a segment.

    ``CONCURRENTLY``, so pushes and backfills go on, except inside a transaction, where PostgreSQL
    refuses it: there a plain build, which holds only that partition's writes while it runs. An invalid
    index (a concurrent build cut short) is dropped and built again. A run that finds another one
    sealing builds nothing: the next run does what is left."""
    if not is_partitioned():
        return []
    with _sealing_lock() as sealing:
        if not sealing:
            logger.info("value index: another run is sealing partitions; nothing built")
            return []
        return _seal(now=now)


def _seal(*, now: datetime) -> list[str]:
    today = now.astimezone(UTC).date()
    # Each index wanted: its name -> (what it seals, the partition, the predicate of a segment).
    wanted: dict[str, tuple[str, str, str]] = {}
    for day in partition_days():
        partition = partition_name(day)
        if day < today:
            wanted[value_index_name(partition)] = (partition, partition, "")
        elif day == today:
            for hours in segment_hours():
                low, high = segment_bounds(day, hours)
                if high <= now:
                    sealed = f"{partition} {hours[0]:02d}:00-{hours[1]:02d}:00"
                    predicate = f" WHERE ts >= {_literal(low)} AND ts < {_literal(high)}"
                    wanted[segment_index_name(partition, hours)] = (sealed, partition, predicate)
    wanted[value_index_name(DEFAULT_PARTITION)] = (DEFAULT_PARTITION, DEFAULT_PARTITION, "")
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY"
    existing = value_indexes()
    built = []
    with connection.cursor() as cursor:
        for name, (sealed, partition, predicate) in wanted.items():
            if existing.get(name):
                continue
            if name in existing:
                cursor.execute(f'DROP INDEX {concurrently} IF EXISTS "{name}"')
            cursor.execute(
                f'CREATE INDEX {concurrently} "{name}" ON "{partition}" {VALUE_INDEX_COLUMNS}{predicate}'
            )
            existing[name] = True
            built.append(sealed)
        # A day's whole index serves every window its segments served: they only cost disk from then on.
        for name in list(existing):
            match = _VALUE_INDEX.match(name)
            if match and match[2] and existing.get(value_index_name(match[1])):
                cursor.execute(f'DROP INDEX {concurrently} IF EXISTS "{name}"')
    value_indexes_forget()
    if built:
        logger.info("value index built on %s", ", ".join(built))
    return built


def value_indexes_forget() -> None:
    """Make this process's next selection read the catalog (``value_indexed_spans``): after it built or
    dropped a value index or a partition, or a test edited the catalog."""
    global _spans_catalog
    _spans_catalog = None


def _valid_value_indexes() -> dict[str, set[str]]:
    """Each partition's valid value indexes, as read at most SPANS_CATALOG_SECONDS ago."""
    global _spans_catalog
    read = _spans_catalog
    if read is None or clock.monotonic() - read[0] > SPANS_CATALOG_SECONDS:
        valid = {
            table: {name for name, is_valid in indexes.items() if is_valid}
            for table, indexes in _partition_value_indexes().items()
        }
        # One assignment of a new tuple: a thread reading it meanwhile sees the old read or this one.
        read = _spans_catalog = (clock.monotonic(), valid)
    return read[1]


def value_indexes() -> dict[str, bool]:
    """Every value index of the partitions (whole and segments), and whether it is valid."""
    return {name: valid for indexes in _partition_value_indexes().values() for name, valid in indexes.items()}


def _partition_value_indexes() -> dict[str, dict[str, bool]]:
    """Each partition of the points table (DEFAULT included), with its value indexes, whole and
    segments, and whether each is valid: one catalog read, for the sealing job and (at most once a
    SPANS_CATALOG_SECONDS, ``_valid_value_indexes``) a process's selections."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_class.relname, index_class.relname, index.indisvalid FROM pg_inherits inherits "
            "JOIN pg_class table_class ON table_class.oid = inherits.inhrelid "
            "LEFT JOIN pg_index index ON index.indrelid = inherits.inhrelid "
            "LEFT JOIN pg_class index_class ON index_class.oid = index.indexrelid "
            "WHERE inherits.inhparent = to_regclass(%s)",
            [TABLE],
        )
        rows = cursor.fetchall()
    partitions: dict[str, dict[str, bool]] = {}
    for table, index, valid in rows:
        indexes = partitions.setdefault(table, {})
        if index is not None and _VALUE_INDEX.match(index):
            indexes[index] = valid
    return partitions


@contextmanager
def _sealing_lock() -> Iterator[bool]:
    """Whether this run may seal: a session-level advisory lock (CONCURRENTLY builds run outside any
    transaction), released when the run ends or its connection does."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [SEALING_LOCK])
        taken = cursor.fetchone()[0]
    try:
        yield taken
    finally:
        if taken:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [SEALING_LOCK])


def value_indexed_spans(*, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The spans of time from ``start`` to ``end`` whose points one value index each holds, oldest
    first: a run of whole sealed days as one span (a query over it reads each day's whole index; a day
    without a partition keeps its points in DEFAULT, sealed too), and each sealed segment of a day not
    yet whole on its own (PostgreSQL uses a partial index only for a query within its bounds).

    Planned from the catalog as this process read it within SPANS_CATALOG_SECONDS: the spans only split
    the window into parts, each read with its own ts bounds, so a span whose index has gone (a day
    dropped, segments replaced by the day's index) or a sealed part planned as a gap reads the same
    points, only without the index."""
    first, last = start.astimezone(UTC).date(), end.astimezone(UTC).date()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    valid = _valid_value_indexes()
    default_sealed = value_index_name(DEFAULT_PARTITION) in valid.get(DEFAULT_PARTITION, set())
    spans: list[tuple[datetime, datetime]] = []
    for day in days:
        partition = partition_name(day)
        # No partition: the day's points wait in DEFAULT.
        indexes = valid.get(partition, set())
        whole = default_sealed if partition not in valid else value_index_name(partition) in indexes
        if whole:
            low, high = day_start(day), day_start(day + timedelta(days=1))
            # A span ending at midnight is a whole day (a segment ends by 18:00): the run goes on.
            if spans and spans[-1][1] == low:
                spans[-1] = (spans[-1][0], high)
            else:
                spans.append((low, high))
        else:
            spans += [
                segment_bounds(day, hours)
                for hours in segment_hours()
                if segment_index_name(partition, hours) in indexes
            ]
    return spans


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
    value_indexes_forget()
    return estimate
