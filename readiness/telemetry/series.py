"""Metric series for charts: the window aggregate a criterion would see, and at most
``MAX_SERIES_POINTS`` points to draw, averaged in SQL buckets when the window holds more. The API's
metrics endpoint and the dashboard's charts and report read them alike."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, FloatField, Func, QuerySet, Sum, Value
from django.db.models.functions import Cast, Floor

from readiness.projects.models import Project
from readiness.telemetry.aggregates import source_counts, window_aggregate, window_points, window_rollups
from readiness.telemetry.models import MetricRollup
from readiness.telemetry.rollups.read import window_plan

# A chart is a few hundred pixels wide: more points than this only cost bandwidth.
MAX_SERIES_POINTS = 500


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
            series = _bucketed_series(points=points, start=start, window=window)
        return MetricSummary(
            value=aggregate.value, count=aggregate.count, series=series, sources=source_counts(points)
        )
    # Part rollups, part raw: the rollup rows count and sum their periods, so they chart and count
    # alongside the raw remainder (an hour row in the bucket of its start: a chart's bucket of a 30-day
    # window is 86 minutes wide).
    rollups = window_rollups(project_id=project.pk, metric=metric, plan=plan, labels=labels, kinds=kinds)
    remainder = points.filter(plan.raw)
    if series is None:
        rows = [
            *bucket_rows(points=remainder, start=start, window=window).values_list("bucket", "total", "n"),
            *_rollup_bucket_rows(rollups=rollups, start=start, window=window),
        ]
        series = series_from_buckets(rows, start=start, window=window)
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


def _rollup_bucket_rows(
    *, rollups: QuerySet[MetricRollup], start: datetime, window: timedelta
) -> Iterable[tuple[float, float, int]]:
    width = window.total_seconds() / MAX_SERIES_POINTS
    offset = Cast(EpochSeconds("start"), FloatField()) - Value(start.timestamp(), output_field=FloatField())
    return (
        rollups.order_by()
        .annotate(bucket=Floor(offset / Value(width, output_field=FloatField())))
        .values("bucket")
        .annotate(total=Sum("sum"), n=Sum("count"))
        .values_list("bucket", "total", "n")
    )


def _bucketed_series(*, points: QuerySet, start: datetime, window: timedelta) -> list[SeriesPoint]:
    rows = bucket_rows(points=points, start=start, window=window).values_list("bucket", "total", "n")
    return series_from_buckets(rows, start=start, window=window)


def bucket_rows(*, points: QuerySet, start: datetime, window: timedelta) -> QuerySet:
    """Split the window into ``MAX_SERIES_POINTS`` equal buckets and sum each in SQL (one GROUP BY,
    whatever the number of points): a values queryset of ``bucket``, ``total`` and ``n``. The
    scorecard page unions several of these into one query (readiness.dashboard.scorecard.series)."""
    width = window.total_seconds() / MAX_SERIES_POINTS
    offset = Cast(EpochSeconds("ts"), FloatField()) - Value(start.timestamp(), output_field=FloatField())
    return (
        points.order_by()
        .annotate(bucket=Floor(offset / Value(width, output_field=FloatField())))
        .values("bucket")
        .annotate(total=Sum("value"), n=Count("id"))
    )


def series_from_buckets(
    rows: Iterable[tuple[float, float, int]], *, start: datetime, window: timedelta
) -> list[SeriesPoint]:
    """The averages of ``(bucket, total, n)`` rows, each stamped with the middle of its bucket; empty
    buckets are left out, not zero."""
    width = window.total_seconds() / MAX_SERIES_POINTS
    # The window is (start, end], so the bucket number is in [0, MAX_SERIES_POINTS] and reaches the
    # top only for a point exactly at the window's end (or by float rounding): clamp, then merge.
    sums: dict[int, tuple[float, int]] = {}
    for bucket, total, n in rows:
        index = min(max(int(bucket), 0), MAX_SERIES_POINTS - 1)
        previous_total, previous_n = sums.get(index, (0.0, 0))
        sums[index] = (previous_total + total, previous_n + n)
    return [
        SeriesPoint(start + timedelta(seconds=(index + 0.5) * width), total / n)
        for index, (total, n) in sorted(sums.items())
    ]
