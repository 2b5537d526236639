"""Metric series for charts: the window aggregate a criterion would see, and at most
``MAX_SERIES_POINTS`` points to draw, averaged in SQL buckets when the window holds more. The API's
metrics endpoint and the dashboard's charts and report read them alike.

A window of a week or more is bucketed by whole hours from the epoch (``bucket_grid``): every hour and
minute rollup then lies in one bucket, so its buckets are drawn from rollups exactly as from the raw
points (count, sum and mean per bucket; PRODUCT.md §9), and still after raw retention."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import BigIntegerField, Count, F, FloatField, Func, QuerySet, Sum, Value
from django.db.models.expressions import Combinable
from django.db.models.functions import Cast, Floor

from readiness.projects.models import Project
from readiness.telemetry.aggregates import source_counts, window_aggregate, window_points, window_rollups
from readiness.telemetry.models import MetricRollup
from readiness.telemetry.rollups.read import window_plan

# A chart is a few hundred pixels wide: more points than this only cost bandwidth.
MAX_SERIES_POINTS = 500
# From this window on, buckets are whole hours (a week: one point an hour, 168; 30 days: two hours, 360),
# drawn from hour rollups. Shorter windows keep MAX_SERIES_POINTS buckets of window / 500, finer than an
# hour, read from raw points (at most a week of them).
HOUR_BUCKETS_FROM = timedelta(days=7)
_HOUR_SECONDS = 3600.0


class EpochSeconds(Func):
    """Seconds since 1970 of a datetime column, on the two databases Readiness runs on."""

    output_field = FloatField()

    def as_postgresql(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        return self.as_sql(compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)", **extra)

    def as_sqlite(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        # Django stores SQLite datetimes as UTC text, which julianday() reads (to ~50 µs).
        return self.as_sql(
            compiler, connection, template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)", **extra
        )


@dataclass(frozen=True)
class BucketGrid:
    """A chart's buckets over the window ``start < ts <= end``: bucket ``k`` holds the times whose epoch
    seconds are in ``[origin + k * width, origin + (k + 1) * width)``."""

    start: datetime
    end: datetime
    origin: float  # epoch seconds
    width: float  # seconds
    first: int  # the buckets the window touches, first to last
    last: int

    @property
    def aligned(self) -> bool:
        """Whole hours from the epoch: each rollup row (a UTC minute or hour) lies in one bucket."""
        return self.origin == 0.0 and self.width % _HOUR_SECONDS == 0

    def bucket_of(self, column: str, *, plus: Combinable | None = None) -> Floor:
        """The bucket number of a datetime column (``plus`` seconds later), in SQL."""
        seconds = Cast(EpochSeconds(column), FloatField())
        if plus is not None:
            seconds = seconds + plus
        offset = seconds - Value(self.origin, output_field=FloatField())
        return Floor(offset / Value(self.width, output_field=FloatField()))

    def clamp(self, index: int) -> int:
        """Into the window's buckets: a point exactly at ``end`` on a bucket edge (or float rounding)
        would open one more, merged into the last instead."""
        return min(max(index, self.first), self.last)

    def middle(self, index: int) -> datetime:
        """Where a bucket's point is drawn: the middle of the bucket's part inside the window."""
        shift = self.start.timestamp() - self.origin
        low = max(index * self.width - shift, 0.0)
        high = min((index + 1) * self.width - shift, (self.end - self.start).total_seconds())
        return self.start + timedelta(seconds=(low + high) / 2)


def bucket_grid(*, start: datetime, end: datetime) -> BucketGrid:
    """``MAX_SERIES_POINTS`` equal buckets from ``start``, or from ``HOUR_BUCKETS_FROM`` on, the fewest
    whole hours a bucket that keep the window within ``MAX_SERIES_POINTS`` buckets (its partial first
    and last bucket included)."""
    seconds = (end - start).total_seconds()
    if end - start >= HOUR_BUCKETS_FROM:
        width = math.ceil(seconds / (MAX_SERIES_POINTS - 1) / _HOUR_SECONDS) * _HOUR_SECONDS
        first = math.floor(start.timestamp() / width)
        last = max(math.ceil(end.timestamp() / width) - 1, first)
        return BucketGrid(start=start, end=end, origin=0.0, width=width, first=first, last=last)
    return BucketGrid(
        start=start,
        end=end,
        origin=start.timestamp(),
        width=seconds / MAX_SERIES_POINTS,
        first=0,
        last=MAX_SERIES_POINTS - 1,
    )


@dataclass(frozen=True)
class SeriesPoint:
    ts: datetime
    value: float


@dataclass(frozen=True)
class MetricSummary:
    value: float | None
    count: int
    series: list[SeriesPoint]
    sources: dict[str, int]  # points per source ("probe:api": 120), PRODUCT.md §8
    # The value is a percentile from merged rollup sketches (within 1%), PRODUCT.md §9.
    approximate: bool = False


def metric_summary(
    *,
    project: Project,
    metric: str,
    aggregation: str,
    window: timedelta,
    now: datetime,
    labels: Mapping[str, str] | None = None,
    kinds: Sequence[str] = (),
) -> MetricSummary:
    """The aggregate of a metric over the window ``now - window < ts <= now`` (exactly what a criterion
    with these ``labels`` and source ``kinds`` would see), a series of at most ``MAX_SERIES_POINTS``
    points for a chart, and how many points each source gave."""
    start = now - window
    grid = bucket_grid(start=start, end=now)
    window_of = {"project_id": project.pk, "metric": metric, "start": start, "end": now}
    plan = window_plan(**window_of)
    aggregate = window_aggregate(**window_of, aggregation=aggregation, labels=labels, kinds=kinds, plan=plan)
    if aggregate.count == 0:
        return MetricSummary(value=None, count=0, series=[], sources={})
    points = window_points(**window_of, labels=labels, kinds=kinds)
    series: list[SeriesPoint] | None = None
    if aggregate.count <= MAX_SERIES_POINTS:
        # Few enough to chart as they are: exact times and values beat bucket averages.
        raw = [SeriesPoint(ts, value) for ts, value in points.order_by("ts", "id").values_list("ts", "value")]
        # Unless retention removed some that rollups still count: then their buckets, like many points.
        series = raw if len(raw) == aggregate.count else None
    if not plan.uses_rollups:
        if series is None:
            series = _bucketed_series(points=points, grid=grid)
        return MetricSummary(
            value=aggregate.value, count=aggregate.count, series=series, sources=source_counts(points)
        )
    # Part rollups, part raw: the rollup rows count and sum their periods, so they chart and count
    # alongside the raw remainder (exactly on a window of HOUR_BUCKETS_FROM or more; on a shorter one an
    # hour row joins the bucket of its start).
    rollups = window_rollups(project_id=project.pk, metric=metric, plan=plan, labels=labels, kinds=kinds)
    remainder = points.filter(plan.raw)
    if series is None:
        rows = [
            *bucket_rows(points=remainder, grid=grid).values_list("bucket", "total", "n"),
            *rollup_bucket_rows(rollups=rollups, grid=grid).values_list("bucket", "total", "n"),
        ]
        series = series_from_buckets(rows, grid=grid)
    sources = source_counts(remainder)
    folded = rollups.order_by().values_list("source").annotate(n=Sum("count")).values_list("source", "n")
    for source, n in folded:
        sources[source] = sources.get(source, 0) + int(n)
    return MetricSummary(
        value=aggregate.value,
        count=aggregate.count,
        series=series,
        sources=dict(sorted(sources.items())),
        approximate=aggregate.approximate,
    )


def rollup_bucket_rows(*, rollups: QuerySet[MetricRollup], grid: BucketGrid) -> QuerySet:
    """The rollup rows' counts and sums per bucket of ``grid``, each row in the bucket of its start: exact
    when the grid is ``aligned`` (a row then lies in one bucket), an approximation otherwise. The same
    ``bucket``, ``total`` and ``n`` columns as ``bucket_rows``, so the two union."""
    # A row by the middle of its period: its start is on a bucket edge, where SQLite's julianday()
    # (to ~50 µs) could put it in the bucket before.
    middle = Cast(F("resolution"), FloatField()) / Value(2.0, output_field=FloatField())
    return (
        rollups.order_by()
        .annotate(bucket=grid.bucket_of("start", plus=middle))
        .values("bucket")
        .annotate(total=Sum("sum"), n=Cast(Sum("count"), BigIntegerField()))
    )


def _bucketed_series(*, points: QuerySet, grid: BucketGrid) -> list[SeriesPoint]:
    rows = bucket_rows(points=points, grid=grid).values_list("bucket", "total", "n")
    return series_from_buckets(rows, grid=grid)


def bucket_rows(*, points: QuerySet, grid: BucketGrid) -> QuerySet:
    """Sum the points of each bucket of ``grid`` in SQL (one GROUP BY, whatever the number of points): a
    values queryset of ``bucket``, ``total`` and ``n``. The scorecard page unions several of these into
    one query (readiness.dashboard.scorecard.series)."""
    return (
        points.order_by()
        .annotate(bucket=grid.bucket_of("ts"))
        .values("bucket")
        .annotate(total=Sum("value"), n=Count("id"))
    )


def series_from_buckets(rows: Iterable[tuple[float, float, int]], *, grid: BucketGrid) -> list[SeriesPoint]:
    """The averages of ``(bucket, total, n)`` rows, each stamped with the middle of its bucket's part
    inside the window; empty buckets are left out, not zero."""
    sums: dict[int, tuple[float, int]] = {}
    for bucket, total, n in rows:
        index = grid.clamp(int(bucket))
        previous_total, previous_n = sums.get(index, (0.0, 0))
        sums[index] = (previous_total + total, previous_n + int(n))
    return [SeriesPoint(grid.middle(index), total / n) for index, (total, n) in sorted(sums.items())]
