"""Every chart series of a scorecard page in a bounded number of queries, whatever its number of criteria.

The API's metrics endpoint charts one metric at a time (``readiness.telemetry.series.metric_summary``): a
count, then the raw points when there are few, or ``MAX_SERIES_POINTS`` SQL buckets when there are many.
A page with 30 metric criteria and a few health targets would pay that 60 times. Here the same steps
run once for all series: one UNION ALL of every window's buckets (which also count and sum each
window), then one UNION ALL of the raw points of the sparse windows, with the API's own bucketing
(``bucket_grid``, ``bucket_rows``, ``series_from_buckets``), so a page's chart and the endpoint's series
agree. A window of a week or more has whole-hour buckets, drawn from hour and minute rollups where the
fold has reached (exactly what its raw points would give, and still after raw retention) plus one query
per metric for its window plan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import IntegerField, Q, QuerySet, Value

from readiness.telemetry.aggregates import window_points, window_rollups
from readiness.telemetry.models import MetricPoint
from readiness.telemetry.rollups.fold import HOUR, hour_of
from readiness.telemetry.rollups.read import WindowPlan, window_plan
from readiness.telemetry.series import (
    MAX_SERIES_POINTS,
    SeriesPoint,
    bucket_grid,
    bucket_rows,
    rollup_bucket_rows,
    series_from_buckets,
)

# SQLite refuses a compound SELECT of more than 500 terms (SQLITE_MAX_COMPOUND_SELECT): chunk the unions
# well below it. A page charts a few dozen series, so this costs a second query only on huge projects.
UNION_CHUNK = 200


@dataclass(frozen=True)
class Window:
    """The points of one metric with ``start < ts <= end`` and these exact labels (PRODUCT.md §1)."""

    metric: str
    start: datetime
    end: datetime
    labels: Mapping[str, str] = field(default_factory=dict)

    def points(self, project_id: int) -> QuerySet[MetricPoint]:
        return window_points(
            project_id=project_id, metric=self.metric, start=self.start, end=self.end, labels=self.labels
        )


@dataclass(frozen=True)
class ChartSeries:
    points: list[SeriesPoint]  # at most MAX_SERIES_POINTS
    count: int  # points in the window
    mean: float | None  # of every point in the window (availability, for health.up)


def chart_series(*, project_id: int, windows: Sequence[Window]) -> list[ChartSeries]:
    """One chartable series (≤ ``MAX_SERIES_POINTS`` points) per window, in the order given. Windows
    alike (two criteria on one metric over one window, as a p99 and a mean) are read once: each is a
    scan of every point in it, the page's largest cost."""
    unique: dict[tuple, Window] = {}
    for window in windows:
        unique.setdefault(_identity(window), window)
    read = dict(zip(unique, _chart_series(project_id=project_id, windows=list(unique.values())), strict=True))
    return [read[_identity(window)] for window in windows]


def _identity(window: Window) -> tuple:
    return (window.metric, window.start, window.end, tuple(sorted(window.labels.items())))


def _chart_series(*, project_id: int, windows: Sequence[Window]) -> list[ChartSeries]:
    if not windows:
        return []
    grids = [bucket_grid(start=window.start, end=window.end) for window in windows]
    plans = _window_plans(
        project_id=project_id, windows=[w for w, g in zip(windows, grids, strict=True) if g.aligned]
    )
    # The buckets of every window first: they also count and sum each window (a separate COUNT would
    # scan every point a second time). A window of whole-hour buckets reads its folded part from rollups.
    buckets: list[QuerySet] = []
    for i, (window, grid) in enumerate(zip(windows, grids, strict=True)):
        points = window.points(project_id)
        if grid.aligned:
            plan = _narrowed(plans[(window.metric, window.end)], start=window.start)
            points = points.filter(plan.raw)
            if plan.uses_rollups:
                rollups = window_rollups(
                    project_id=project_id, metric=window.metric, plan=plan, labels=window.labels
                )
                buckets.append(_tagged(rollup_bucket_rows(rollups=rollups, grid=grid), i))
        buckets.append(_tagged(bucket_rows(points=points, grid=grid), i))
    grouped: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
    for tag, bucket, total, n in _union_all(buckets):
        grouped[tag].append((bucket, total, n))
    counts = [sum(n for _, _, n in grouped[i]) for i in range(len(windows))]
    totals = [sum(total for _, total, _ in grouped[i]) for i in range(len(windows))]
    series = [
        series_from_buckets(grouped[i], grid=grids[i]) if counts[i] > MAX_SERIES_POINTS else []
        for i in range(len(windows))
    ]
    # Few enough to chart as they are: exact times and values beat bucket averages (as the API does).
    sparse = [i for i, n in enumerate(counts) if 0 < n <= MAX_SERIES_POINTS]
    raw = [
        windows[i]
        .points(project_id)
        .order_by()
        .annotate(series=_tag(i))
        .values_list("series", "ts", "value", "id")
        for i in sparse
    ]
    for tag, ts, value, _id in sorted(_union_all(raw), key=lambda row: (row[0], row[1], row[3])):
        series[tag].append(SeriesPoint(ts, value))
    for i in sparse:
        if len(series[i]) != counts[i]:
            # Retention removed raw points that rollups still count: their buckets, like many points.
            series[i] = series_from_buckets(grouped[i], grid=grids[i])
    return [
        ChartSeries(points=points, count=n, mean=(total / n) if n else None)
        for points, n, total in zip(series, counts, totals, strict=True)
    ]


def _window_plans(*, project_id: int, windows: Sequence[Window]) -> dict[tuple[str, datetime], WindowPlan]:
    """One window plan (which part is folded into rollups) per metric and end, for the longest of its
    windows: a query each, whatever the number of criteria on one metric (``_narrowed`` fits it to the
    shorter ones)."""
    longest: dict[tuple[str, datetime], datetime] = {}
    for window in windows:
        key = (window.metric, window.end)
        longest[key] = min(longest.get(key, window.start), window.start)
    return {
        (metric, end): window_plan(project_id=project_id, metric=metric, start=start, end=end)
        for (metric, end), start in longest.items()
    }


def _narrowed(plan: WindowPlan, *, start: datetime) -> WindowPlan:
    """``plan``, of a window ending at the same time but starting no later, fitted to ``start < ts``: its
    rollup rows from the first whole hour after ``start`` on (each summarises its period exactly), raw
    points before that hour (a row holding ``start`` holds points outside the window too), and its
    raw points after it."""
    if not plan.uses_rollups:
        return plan
    hour = hour_of(start) + HOUR
    return WindowPlan(
        raw=plan.raw | Q(ts__lt=hour), rollups=plan.rollups & Q(start__gte=hour), uses_rollups=True
    )


def _tagged(rows: QuerySet, index: int) -> QuerySet:
    return rows.annotate(series=_tag(index)).values_list("series", "bucket", "total", "n")


def _union_all(querysets: list[QuerySet]) -> list[tuple]:
    rows: list[tuple] = []
    for start in range(0, len(querysets), UNION_CHUNK):
        first, *rest = querysets[start : start + UNION_CHUNK]
        rows.extend(first.union(*rest, all=True) if rest else first)
    return rows


def _tag(index: int) -> Value:
    return Value(index, output_field=IntegerField())
