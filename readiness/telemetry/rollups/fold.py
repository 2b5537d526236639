"""The fold: raw points of closed minutes -> minute rollups -> hour rollups (PRODUCT.md §9).

Idempotent by construction: a minute's rows are always recomputed whole from its raw points (deleted,
then inserted), an hour's whole from its minute rows, so folding anything twice gives identical rows
(sums with ``math.fsum``: correctly rounded, so independent of the order the database returns rows in).
``RollupWatermark.folded_until`` records how far the range fold has gone; minutes behind it that
received points later (``RollupDirtyMinute``, written by ``marks.rollups_mark``) are re-folded first.
Every step holds the watermark row's lock, so two overlapping runs never fold the same range at once.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    Aggregate,
    BigIntegerField,
    Count,
    Field,
    FloatField,
    Func,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    TextField,
)
from django.db.models.functions import Cast

from readiness.telemetry.models import MetricPoint, MetricRollup, RollupDirtyMinute, RollupWatermark
from readiness.telemetry.rollups.marks import minute_of
from readiness.telemetry.rollups.sketch import (
    Sketch,
    packed_merge,
    packed_merges,
    packed_sketches_of,
    sketch_of,
)

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
# A minute is folded this long after it closed: longer than any transaction writing points runs (a
# drain's hard limit is 75 s), so a point of an in-flight transaction is never missed. Points written
# later than that land in a closed minute and are marked dirty by their writer.
GRACE = timedelta(minutes=2)
# One transaction folds a span of raw time: starting at an hour, doubled after a span of fewer than
# CHUNK_POINTS / 4 points and halved after one of more than CHUNK_POINTS, from a minute to 7 days:
# memory and lock time stay bounded whatever the rate, and a sparse backlog (a first run over months of
# one point a minute) takes a few dozen transactions, not thousands.
CHUNK_POINTS = 200_000
FIRST_SPAN_MINUTES = 60
MAX_SPAN_MINUTES = 7 * 24 * 60
# Dirty minutes re-folded per transaction.
DIRTY_BATCH = 2_000
PRUNE_BATCH = 10_000

SeriesKey = tuple[int, str, bytes, str]  # project id, metric, labels (canonical JSON), source


def hour_of(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def raw_horizon(now: datetime) -> datetime:
    """Raw points older than this may have been removed by retention: their minutes are never re-folded
    (that would replace a complete rollup by the few points left)."""
    return now - timedelta(days=settings.READINESS_RAW_RETENTION_DAYS)


def rollups_fold(*, now: datetime, budget: float | None = None) -> int:
    """Fold the dirty minutes, then every closed minute up to ``now - GRACE`` not folded yet. With a
    ``budget`` (seconds), no new transaction starts once it is spent: a run after a long backlog stops
    in time and the next run continues from the watermark. Returns the number of rollup rows written."""
    deadline = None if budget is None else time.monotonic() + budget
    target = minute_of(now - GRACE)
    written = _fold_dirty(now=now, deadline=deadline)
    # Whole minutes, always: a minute split between two chunks would get two rows.
    span = FIRST_SPAN_MINUTES
    while deadline is None or time.monotonic() < deadline:
        with transaction.atomic():
            mark = _locked_watermark(target)
            low = mark.folded_until
            if low >= target:
                break
            high = min(low + timedelta(minutes=span), target)
            points = MetricPoint.objects.filter(ts__gte=low, ts__lt=high)
            folded, point_count, minute_rows = _fold_minutes(points, Q(), [(low, high)])
            written += folded
            if point_count < CHUNK_POINTS // 4:
                span = min(span * 2, MAX_SPAN_MINUTES)
            elif point_count > CHUNK_POINTS:
                span = max(span // 2, 1)
            # Hours closed by this chunk: those ending in (low, high].
            hours = []
            hour = hour_of(low)
            while hour + HOUR <= high:
                hours.append(hour)
                hour += HOUR
            if hours:
                written += _fold_closed_hours(hours, low=low, minute_rows=minute_rows)
            mark.folded_until = high
            mark.save(update_fields=["folded_until"])
    return written


def _locked_watermark(target: datetime) -> RollupWatermark:
    """The watermark row, locked; created on the first run at the hour of the oldest raw point (nothing
    is before it, so that hour's rows are complete), or at ``target`` when there are no points yet."""
    mark = RollupWatermark.objects.select_for_update().filter(pk=1).first()
    if mark is not None:
        return mark
    oldest = MetricPoint.objects.aggregate(ts=Min("ts"))["ts"]
    start = min(hour_of(oldest), target) if oldest is not None else target
    RollupWatermark.objects.bulk_create([RollupWatermark(pk=1, folded_until=start)], ignore_conflicts=True)
    return RollupWatermark.objects.select_for_update().get(pk=1)


def _fold_dirty(*, now: datetime, deadline: float | None) -> int:
    written = 0
    while deadline is None or time.monotonic() < deadline:
        with transaction.atomic():
            mark = RollupWatermark.objects.select_for_update().filter(pk=1).first()
            if mark is None:  # never folded: the range fold will see every point
                RollupDirtyMinute.objects.all().delete()
                return written
            batch = list(RollupDirtyMinute.objects.order_by("pk")[:DIRTY_BATCH])
            if not batch:
                return written
            RollupDirtyMinute.objects.filter(pk__in=[d.pk for d in batch]).delete()
            # Minutes the range fold has not reached yet need nothing; minutes whose raw points may be
            # gone are left as they are.
            horizon = raw_horizon(now)
            minutes: dict[tuple[int, str], set[datetime]] = defaultdict(set)
            for dirty in batch:
                if horizon <= dirty.minute < mark.folded_until:
                    minutes[(dirty.project_id, dirty.metric)].add(dirty.minute)
            for (project_id, metric), series_minutes in minutes.items():
                series = Q(project_id=project_id, metric=metric)
                ranges = _ranges(sorted(series_minutes))
                in_ranges = Q()
                for low, high in ranges:
                    in_ranges |= Q(ts__gte=low, ts__lt=high)
                points = MetricPoint.objects.filter(series).filter(in_ranges)
                written += _fold_minutes(points, series, ranges)[0]
                hours = sorted({hour_of(m) for m in series_minutes if hour_of(m) + HOUR <= mark.folded_until})
                if hours:
                    written += _fold_hours(series, hours)
        if len(batch) < DIRTY_BATCH:
            return written
    return written


def _ranges(starts: list[datetime], width: timedelta = MINUTE) -> list[tuple[datetime, datetime]]:
    """Sorted period starts as the fewest [low, high) ranges."""
    ranges: list[tuple[datetime, datetime]] = []
    for start in starts:
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], start + width)
        else:
            ranges.append((start, start + width))
    return ranges


def _series_key(project_id: int, metric: str, labels: dict, source: str) -> SeriesKey:
    return project_id, metric, orjson.dumps(labels, option=orjson.OPT_SORT_KEYS), source


def _fold_minutes(
    points: QuerySet[MetricPoint], series: Q, ranges: list[tuple[datetime, datetime]]
) -> tuple[int, int, list[RollupRow]]:
    """Replace the minute rollups of ``ranges`` (of the series selected by ``series``) by the summary
    of ``points``, the raw points of exactly those minutes. Returns the rows written, the points read
    and, on PostgreSQL, the rows themselves (the range fold merges its hours from them)."""
    in_ranges = Q()
    for low, high in ranges:
        in_ranges |= Q(start__gte=low, start__lt=high)
    MetricRollup.objects.filter(series, in_ranges, resolution=MetricRollup.Resolution.MINUTE).delete()
    if connection.vendor == "postgresql":
        rows = _minute_rows_in_sql(points)
        _copy_rows(rows)
        return len(rows), sum(row[COUNT] for row in rows), rows
    rollups = _minute_rollups_in_python(points)
    MetricRollup.objects.bulk_create(rollups, batch_size=2_000)
    return len(rollups), sum(r.count for r in rollups), []


def _minute_rollups_in_python(points: QuerySet[MetricPoint]) -> list[MetricRollup]:
    groups: dict[tuple[SeriesKey, datetime], list[tuple[datetime, int, float]]] = defaultdict(list)
    labels_of: dict[SeriesKey, dict] = {}
    rows = points.order_by().values_list("project_id", "metric", "labels", "source", "ts", "id", "value")
    for project_id, metric, labels, source, ts, point_id, value in rows.iterator(chunk_size=20_000):
        key = _series_key(project_id, metric, labels, source)
        labels_of.setdefault(key, labels)
        groups[(key, minute_of(ts))].append((ts, point_id, value))
    rollups = []
    for (key, minute), members in groups.items():
        values = np.fromiter((value for _, _, value in members), dtype=float, count=len(members))
        latest_ts, latest_id, latest_value = max(members)
        rollups.append(
            _rollup(
                (key[0], key[1], labels_of[key], key[3]),
                MetricRollup.Resolution.MINUTE,
                minute,
                counts=(len(values), math.fsum(values), float(values.min()), float(values.max())),
                latest=(latest_value, latest_ts, latest_id),
                sketch=sketch_of(values),
            )
        )
    return rollups


def _rollup(
    series: tuple[int, str, dict, str],
    resolution: str,
    start: datetime,
    *,
    counts: tuple[int, float, float, float],
    latest: tuple[float, datetime, int],
    sketch: Sketch,
) -> MetricRollup:
    """One rollup row: ``series`` is (project id, metric, labels, source), ``counts`` (count, sum, min,
    max), ``latest`` the newest point's (value, ts, id)."""
    project_id, metric, labels, source = series
    count, total, low, high = counts
    latest_value, latest_ts, latest_id = latest
    return MetricRollup(
        project_id=project_id,
        metric=metric,
        labels=labels,
        source=source,
        resolution=resolution,
        start=start,
        count=count,
        sum=total,
        min=low,
        max=high,
        latest_value=latest_value,
        latest_ts=latest_ts,
        latest_id=latest_id,
        sketch=sketch.to_bytes(),
    )


class _Newest(Aggregate):
    """The ``expression`` of the row with the newest ``ts``, then the highest ``id`` (the tie rule of
    ``latest``), in the GROUP BY's own scan."""

    function = "ARRAY_AGG"
    template = "(%(function)s(%(expressions)s ORDER BY %(newest)s))[1]"

    def __init__(self, expression: str, *, newest: str, output_field: Field) -> None:
        super().__init__(expression, newest=newest, output_field=output_field)


class _PeriodEpoch(Func):
    """The start of the UTC minute or hour holding a timestamp, in seconds since the epoch: an int the
    fold reads without Django's per-row datetime conversion, finds a minute's hour with and orders by."""

    # On the UTC wall-clock time (a timestamp without time zone), as Django's Trunc does: with the
    # three-argument DATE_TRUNC of a timestamptz the GROUP BY of 1-second points took ~1.5x as long.
    template = "(EXTRACT(EPOCH FROM DATE_TRUNC('%(period)s', %(expressions)s AT TIME ZONE 'UTC')))::bigint"
    output_field = BigIntegerField()

    def __init__(self, expression: str, *, period: str) -> None:
        if period not in ("minute", "hour"):
            raise ValueError(f"period must be minute or hour, not {period!r}")
        super().__init__(expression, period=period)


# A rollup row as the fold writes it on PostgreSQL: the values of ROLLUP_COLUMNS, in that order (labels
# as canonical JSON text, as the jsonb column gives it back; the period's start in seconds since the
# epoch; the latest ts as PostgreSQL's text of it, read and written back without a datetime in between;
# the sketch packed).
RollupRow = tuple[int, str, str, str, int, int, int, float, float, float, float, str, int, bytes]
ROLLUP_COLUMNS = (
    "project_id", "metric", "labels", "source", "resolution", "start", "count", "sum", "min", "max",
    "latest_value", "latest_ts", "latest_id", "sketch",
)  # fmt: skip
START, COUNT, SUM, MIN, MAX = (ROLLUP_COLUMNS.index(c) for c in ("start", "count", "sum", "min", "max"))
LATEST_VALUE, SKETCH = ROLLUP_COLUMNS.index("latest_value"), ROLLUP_COLUMNS.index("sketch")
# Lines per write to COPY.
COPY_LINES = 10_000
# Groups read per fetch of the fold's server-side cursor: memory stays bounded for any chunk.
FETCH_GROUPS = 5_000


def _summary_groups(rows: QuerySet, summary: dict[str, Aggregate]) -> Iterator[list[tuple]]:
    """Batches of (project id, metric, labels text, source, period start, *summary columns): one row
    per series and ``period`` of ``rows``, read with the ORM's SQL but none of its per-row conversions
    (the fold reads every group once and writes it straight back)."""
    groups = rows.order_by().values("project_id", "metric", "labels", "source", "period").annotate(**summary)
    sql, params = groups.query.sql_with_params()
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(FETCH_GROUPS):
            yield batch


def _summary_columns(
    table: str, *, count: Aggregate, low: str, high: str, value: str, ts: str, id: str
) -> dict[str, Aggregate]:
    """What a rollup row summarises of its group, read from points (one value each) or from minute
    rows (their count, min, max and newest point): the newest by ts, then by id."""
    newest = f'"{table}"."{ts}" DESC, "{table}"."{id}" DESC'
    return {
        "n": count,
        "low": Min(low),
        "high": Max(high),
        "latest_value": _Newest(value, newest=newest, output_field=FloatField()),
        "latest_ts": Cast(Max(ts), TextField()),
        "latest_id": _Newest(id, newest=newest, output_field=BigIntegerField()),
    }


def _minute_rows_in_sql(points: QuerySet[MetricPoint]) -> list[RollupRow]:
    """PostgreSQL groups and summarises the points itself (one GROUP BY); only the sum (``fsum``) and
    the sketches (all of a batch's minutes at once) are made here, from each minute's values."""
    from django.contrib.postgres.aggregates import ArrayAgg  # the embedded SQLite default never needs it

    summary = _summary_columns(
        "telemetry_metricpoint", count=Count("id"), low="value", high="value", value="value", ts="ts", id="id"
    ) | {"parts": ArrayAgg("value")}
    minute = MetricRollup.Resolution.MINUTE.value
    rows: list[RollupRow] = []
    for batch in _summary_groups(points.annotate(period=_PeriodEpoch("ts", period="minute")), summary):
        sizes = np.fromiter((group[5] for group in batch), dtype=np.int64, count=len(batch))
        values = np.fromiter(
            itertools.chain.from_iterable(group[11] for group in batch), dtype=float, count=int(sizes.sum())
        )
        sketches = packed_sketches_of(values, sizes)
        rows.extend(
            (p, m, labels, source, minute, period, n, math.fsum(parts), low, high, lv, lts, lid, sketch)
            for (p, m, labels, source, period, n, low, high, lv, lts, lid, parts), sketch in zip(
                batch, sketches, strict=True
            )
        )
    return rows


# COPY's text format: these four characters are written escaped (labels, metric names and sources
# are free text).
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_rows(rows: list[RollupRow]) -> None:
    """Insert rollup rows with COPY, each row written as its text line here: a float's ``repr`` reads
    back as the same float, the latest ts is PostgreSQL's own text, the sketch is bytea hex. (Django's
    client-side binding would inline every sketch as hex in an INSERT; psycopg's ``write_row`` adapts
    value by value, several times this.)"""
    escapes = _COPY_ESCAPES
    # Rows of one chunk share few distinct periods: each start's text is made once.
    starts: dict[int, str] = {}
    for row in rows:
        if row[START] not in starts:
            starts[row[START]] = datetime.fromtimestamp(row[START], UTC).isoformat()
    lines = [
        f"{p}\t{m.translate(escapes)}\t{labels.translate(escapes)}\t{source.translate(escapes)}\t{resolution}"
        f"\t{starts[start]}\t{n}\t{total!r}\t{low!r}\t{high!r}\t{lv!r}\t{lts}\t{lid}\t\\\\x{sketch.hex()}\n"
        for p, m, labels, source, resolution, start, n, total, low, high, lv, lts, lid, sketch in rows
    ]
    with connection.cursor() as cursor:
        sql = f"COPY telemetry_metricrollup ({', '.join(ROLLUP_COLUMNS)}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for first in range(0, len(lines), COPY_LINES):
                copy.write("".join(lines[first : first + COPY_LINES]))


def _fold_hours(series: Q, hours: Iterable[datetime]) -> int:
    """Replace the hour rollups of ``hours`` (of the series selected by ``series``) by the merge of
    their minute rollups."""
    in_hours = Q()
    for low, high in _ranges(sorted(hours), HOUR):
        in_hours |= Q(start__gte=low, start__lt=high)
    MetricRollup.objects.filter(series, in_hours, resolution=MetricRollup.Resolution.HOUR).delete()
    minutes = MetricRollup.objects.filter(series, in_hours, resolution=MetricRollup.Resolution.MINUTE)
    if connection.vendor == "postgresql":
        rows = _hour_rows_in_sql(minutes)
        _copy_rows(rows)
        return len(rows)
    rollups = _hour_rollups_in_python(minutes)
    MetricRollup.objects.bulk_create(rollups, batch_size=2_000)
    return len(rollups)


def _fold_closed_hours(hours: list[datetime], *, low: datetime, minute_rows: list[RollupRow]) -> int:
    """The hour rollups of the hours a range chunk from ``low`` closed. On PostgreSQL the hours wholly
    inside the chunk are merged from its own minute rows, in memory (the chunk made every minute row
    they have, and a sparse series has one a point: reading them back doubled the fold's cost); an hour
    the chunk began inside, and every hour on SQLite, from the stored minute rows."""
    if connection.vendor != "postgresql":
        return _fold_hours(Q(), hours)
    before = [hour for hour in hours if hour < low]
    inside = [hour for hour in hours if hour >= low]
    written = _fold_hours(Q(), before) if before else 0
    if inside:
        in_hours = Q()
        for first, end in _ranges(inside, HOUR):
            in_hours |= Q(start__gte=first, start__lt=end)
        MetricRollup.objects.filter(in_hours, resolution=MetricRollup.Resolution.HOUR).delete()
        rows = _hour_rows_of(minute_rows, {int(hour.timestamp()) for hour in inside})
        _copy_rows(rows)
        written += len(rows)
    return written


def _hour_rows_of(minute_rows: list[RollupRow], hours: set[int]) -> list[RollupRow]:
    """The hour rows of ``hours`` (epoch seconds) merged from ``minute_rows``, every minute row of those
    hours: the same rows ``_hour_rows_in_sql`` makes from the stored ones. An hour's latest point is in
    its newest minute (minutes do not overlap), so that row's latest is the hour's."""
    groups: dict[tuple[int, str, str, str, int], list[RollupRow]] = defaultdict(list)
    for row in minute_rows:
        hour = row[START] - row[START] % 3600
        if hour in hours:
            groups[(row[0], row[1], row[2], row[3], hour)].append(row)
    rows: list[RollupRow] = []
    resolution = MetricRollup.Resolution.HOUR.value
    several: list[tuple[tuple[int, str, str, str, int], list[RollupRow]]] = []
    for key, members in groups.items():
        if len(members) == 1:
            # One minute with points (every hour of a series with a point an hour): the hour's summary
            # is that minute's, sum and sketch included (``fsum`` of one sum is itself, the merge of one
            # stored sketch is its bytes).
            rows.append((*key[:4], resolution, key[4], *members[0][COUNT:]))
        else:
            several.append((key, members))
    sketches = packed_merges([[row[SKETCH] for row in members] for _, members in several])
    for ((p, m, labels, source, hour), members), sketch in zip(several, sketches, strict=True):
        newest = max(members, key=lambda row: row[START])
        rows.append(
            (
                p, m, labels, source, resolution, hour,
                sum(row[COUNT] for row in members),
                math.fsum(row[SUM] for row in members),
                min(row[MIN] for row in members),
                max(row[MAX] for row in members),
                *newest[LATEST_VALUE : SKETCH],
                sketch,
            )
        )  # fmt: skip
    return rows


def _hour_rows_in_sql(minutes: QuerySet[MetricRollup]) -> list[RollupRow]:
    from django.contrib.postgres.aggregates import ArrayAgg

    summary = _summary_columns(
        "telemetry_metricrollup",
        count=Sum("count"),
        low="min",
        high="max",
        value="latest_value",
        ts="latest_ts",
        id="latest_id",
    ) | {"parts": ArrayAgg("sum"), "sketches": ArrayAgg("sketch")}
    hour = MetricRollup.Resolution.HOUR.value
    rows: list[RollupRow] = []
    for batch in _summary_groups(minutes.annotate(period=_PeriodEpoch("start", period="hour")), summary):
        sketches = packed_merges([group[12] for group in batch])
        rows.extend(
            # SUM of a bigint is a numeric: back to an int.
            (p, m, labels, source, hour, period, int(n), math.fsum(parts), low, high, lv, lts, lid, sketch)
            for (p, m, labels, source, period, n, low, high, lv, lts, lid, parts, _), sketch in zip(
                batch, sketches, strict=True
            )
        )
    return rows


def _hour_rollups_in_python(minutes: QuerySet[MetricRollup]) -> list[MetricRollup]:
    minutes = (
        minutes.order_by()
        .values_list(
            "project_id", "metric", "labels", "source", "start", "count", "sum", "min", "max",
            "latest_value", "latest_ts", "latest_id", "sketch",
        )
    )  # fmt: skip
    groups: dict[tuple[SeriesKey, datetime], list[tuple]] = defaultdict(list)
    labels_of: dict[SeriesKey, dict] = {}
    for row in minutes.iterator(chunk_size=5_000):
        key = _series_key(*row[:4])
        labels_of.setdefault(key, row[2])
        groups[(key, hour_of(row[4]))].append(row)
    rollups = []
    for (key, hour), members in groups.items():
        latest = max(members, key=lambda r: (r[10], r[11]))
        rollups.append(
            _rollup(
                (key[0], key[1], labels_of[key], key[3]),
                MetricRollup.Resolution.HOUR,
                hour,
                counts=(
                    sum(r[5] for r in members),
                    math.fsum(r[6] for r in members),
                    min(r[7] for r in members),
                    max(r[8] for r in members),
                ),
                latest=(latest[9], latest[10], latest[11]),
                sketch=packed_merge(r[12] for r in members),
            )
        )
    return rollups


def rollups_prune(*, before: datetime) -> int:
    """Delete the rollup rows of periods starting before ``before`` (rollup retention), in batches of
    PRUNE_BATCH so no statement holds locks or builds WAL for long. Returns the rows deleted."""
    deleted = 0
    while True:
        ids = list(MetricRollup.objects.filter(start__lt=before).values_list("pk", flat=True)[:PRUNE_BATCH])
        if not ids:
            break
        deleted += MetricRollup.objects.filter(pk__in=ids).delete()[0]
    RollupDirtyMinute.objects.filter(minute__lt=before).delete()
    return deleted
