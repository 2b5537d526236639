"""Windowed aggregates of metric points, computed in SQL.

Once the fold has run, a window is read from rollups where they exist and raw points elsewhere
(telemetry.rollups.read says which part comes from where): count, sum, mean, min, max and latest are
exact either way; percentiles are exact up to EXACT_PERCENTILE_MAX_POINTS points while the raw points
are all kept, and from the merged sketches (within 1%, ``approximate``) otherwise.

On PostgreSQL every aggregation, percentiles included (``percentile_cont``: linear interpolation between
closest ranks, as numpy's default), runs in the database. SQLite has no ``percentile_cont``, so there
the window's values are read and numpy interpolates the same way: the same results on both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.db import connection
from django.db.models import Aggregate, Avg, Count, FloatField, Max, Min, Q, QuerySet, Sum

from readiness.telemetry.models import MetricPoint, MetricRollup
from readiness.telemetry.rollups.read import EXACT_PERCENTILE_MAX_POINTS, WindowPlan, window_plan
from readiness.telemetry.rollups.sketch import packed_merge, sketch_of, sketches_merge

PERCENTILES: dict[str, float] = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}
SIMPLE: dict[str, type[Aggregate]] = {"mean": Avg, "min": Min, "max": Max, "sum": Sum}
AGGREGATIONS = ("latest", "mean", "min", "max", "sum", "count", *PERCENTILES)


@dataclass(frozen=True)
class WindowAggregate:
    value: float | None
    count: int
    as_of: datetime | None  # ts of the newest point in the window
    # The distinct sources ("probe:api", ...) of the points the value used (PRODUCT.md §8), sorted.
    sources: tuple[str, ...] = ()
    # True when a percentile came from the merged rollup sketches (relative error <= 1%), not the points.
    approximate: bool = False


class PercentileCont(Aggregate):
    function = "PERCENTILE_CONT"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, percentile: float) -> None:
        super().__init__(expression, percentile=float(percentile))


def window_points(
    *,
    project_id: int,
    metric: str,
    start: datetime,
    end: datetime,
    labels: Mapping[str, str] | None = None,
    kinds: Sequence[str] = (),
) -> QuerySet[MetricPoint]:
    """The points of the window ``start < ts <= end`` (PRODUCT.md §1), filtered by exact labels and,
    when ``kinds`` is not empty, by the kind of their source (PRODUCT.md §8: the others as if absent)."""
    qs = MetricPoint.objects.filter(project_id=project_id, metric=metric, ts__gt=start, ts__lte=end)
    return qs.filter(series_filter(labels=labels, kinds=kinds))


def series_filter(*, labels: Mapping[str, str] | None = None, kinds: Sequence[str] = ()) -> Q:
    """Exact labels and source kinds, on points and rollups alike (both have ``labels`` and ``source``)."""
    # Keys are validated as [a-z_][a-z0-9_]* on the way in, so they are safe as lookup paths.
    accepted = Q(**{f"labels__{key}": value for key, value in (labels or {}).items()})
    if kinds:
        accepted &= kinds_filter(kinds)
    return accepted


def kinds_filter(kinds: Sequence[str]) -> Q:
    """Points whose source is of one of ``kinds``: a prefix match, which the source's "kind:" makes exact."""
    accepted = Q()
    for kind in kinds:
        accepted |= Q(source__startswith=f"{kind}:")
    return accepted


def source_counts(points: QuerySet[MetricPoint]) -> dict[str, int]:
    """How many of ``points`` came from each source, in one GROUP BY."""
    rows = points.order_by().values_list("source").annotate(n=Count("id")).values_list("source", "n")
    return dict(sorted(rows))


def window_aggregate(
    *,
    project_id: int,
    metric: str,
    aggregation: str,
    start: datetime,
    end: datetime,
    labels: Mapping[str, str] | None = None,
    kinds: Sequence[str] = (),
    plan: WindowPlan | None = None,
) -> WindowAggregate:
    """The ``aggregation`` of the window ``start < ts <= end``; ``plan`` when the caller already has the
    window's (``rollups.read.window_plan``)."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}")
    points = window_points(
        project_id=project_id, metric=metric, start=start, end=end, labels=labels, kinds=kinds
    )
    if plan is None:
        plan = window_plan(project_id=project_id, metric=metric, start=start, end=end)
    if plan.uses_rollups:
        rollups = window_rollups(project_id=project_id, metric=metric, plan=plan, labels=labels, kinds=kinds)
        return _planned_aggregate(aggregation, points=points, plan=plan, rollups=rollups)
    return _raw_aggregate(aggregation, points=points)


def _raw_aggregate(aggregation: str, *, points: QuerySet[MetricPoint]) -> WindowAggregate:
    if aggregation == "latest":
        # Newest ts wins; among equal ts the last received (highest id). Its value is the one used.
        newest = points.order_by("-ts", "-id").values_list("value", "ts", "source").first()
        if newest is None:
            return WindowAggregate(None, 0, None)
        return WindowAggregate(newest[0], points.count(), newest[1], (newest[2],))
    columns: dict[str, Aggregate] = {"n": Count("id"), "as_of": Max("ts")}
    if connection.vendor == "postgresql":
        # The window's sources in the same scan (a window holds a handful of sources, not thousands).
        from django.contrib.postgres.aggregates import ArrayAgg

        columns["sources"] = ArrayAgg("source", distinct=True, default=[])
    if aggregation in SIMPLE:
        columns["value"] = SIMPLE[aggregation]("value")
    elif aggregation in PERCENTILES and connection.vendor == "postgresql":
        columns["value"] = PercentileCont("value", PERCENTILES[aggregation])
    row = points.aggregate(**columns)
    count = int(row["n"])
    if count == 0:
        return WindowAggregate(None, 0, None)
    if "sources" in row:
        sources = tuple(sorted(row["sources"]))
    else:
        sources = tuple(sorted(points.order_by().values_list("source", flat=True).distinct()))
    if aggregation == "count":
        value: float | None = float(count)
    elif "value" in row:
        value = None if row["value"] is None else float(row["value"])
    else:
        values = np.fromiter(points.values_list("value", flat=True), dtype=float)
        value = float(np.percentile(values, PERCENTILES[aggregation] * 100, method="linear"))
    return WindowAggregate(value, count, row["as_of"], sources)


def window_rollups(
    *,
    project_id: int,
    metric: str,
    plan: WindowPlan,
    labels: Mapping[str, str] | None = None,
    kinds: Sequence[str] = (),
) -> QuerySet[MetricRollup]:
    """The rollup rows of the window's ``plan``, filtered exactly as its raw points would be."""
    return MetricRollup.objects.filter(project_id=project_id, metric=metric).filter(
        plan.rollups, series_filter(labels=labels, kinds=kinds)
    )


def _sources_column() -> dict[str, Aggregate]:
    """On PostgreSQL the distinct sources come in the aggregate's own scan (one query, not two)."""
    if connection.vendor != "postgresql":
        return {}
    from django.contrib.postgres.aggregates import ArrayAgg

    return {"sources": ArrayAgg("source", distinct=True, default=[])}


def _sources(qs: QuerySet) -> set[str]:
    return set(qs.order_by().values_list("source", flat=True).distinct())


def _planned_aggregate(
    aggregation: str, *, points: QuerySet[MetricPoint], plan: WindowPlan, rollups: QuerySet[MetricRollup]
) -> WindowAggregate:
    """The window from its rollup rows plus its raw remainder (``plan``); ``points`` is the whole
    window's raw points, read for exact percentiles only."""
    raw = points.filter(plan.raw)
    if aggregation == "latest":
        # Newest ts, then highest id, among the raw remainder and the rollups' latest points alike.
        candidates = [
            row
            for row in (
                raw.order_by("-ts", "-id").values_list("ts", "id", "value", "source").first(),
                rollups.order_by("-latest_ts", "-latest_id")
                .values_list("latest_ts", "latest_id", "latest_value", "source")
                .first(),
            )
            if row is not None
        ]
        if not candidates:
            return WindowAggregate(None, 0, None)
        ts, _, value, source = max(candidates, key=lambda row: (row[0], row[1]))
        count = raw.count() + int(rollups.aggregate(n=Sum("count"))["n"] or 0)
        return WindowAggregate(value, count, ts, (source,))
    part = raw.aggregate(
        n=Count("id"),
        total=Sum("value"),
        low=Min("value"),
        high=Max("value"),
        as_of=Max("ts"),
        **_sources_column(),
    )
    folded = rollups.aggregate(
        n=Sum("count"),
        total=Sum("sum"),
        low=Min("min"),
        high=Max("max"),
        as_of=Max("latest_ts"),
        **_sources_column(),
    )
    count = int(part["n"] or 0) + int(folded["n"] or 0)
    if count == 0:
        return WindowAggregate(None, 0, None)
    sources = tuple(
        sorted(
            set(part["sources"] if "sources" in part else _sources(raw))
            | set(folded["sources"] if "sources" in folded else _sources(rollups))
        )
    )
    as_of = max(ts for ts in (part["as_of"], folded["as_of"]) if ts is not None)
    lows = [v for v in (part["low"], folded["low"]) if v is not None]
    highs = [v for v in (part["high"], folded["high"]) if v is not None]
    total = float(part["total"] or 0.0) + float(folded["total"] or 0.0)
    approximate = False
    if aggregation == "count":
        value: float | None = float(count)
    elif aggregation == "sum":
        value = total
    elif aggregation == "mean":
        value = total / count
    elif aggregation == "min":
        value = min(lows)
    elif aggregation == "max":
        value = max(highs)
    else:
        value = None
        if count <= EXACT_PERCENTILE_MAX_POINTS:
            value = _exact_percentile(points, aggregation, count)
        if value is None:
            merged = sketches_merge(
                [
                    packed_merge(rollups.order_by().values_list("sketch", flat=True)),
                    sketch_of(np.fromiter(raw.order_by().values_list("value", flat=True), dtype=float)),
                ]
            )
            value = merged.quantile(PERCENTILES[aggregation], low=min(lows), high=max(highs))
            approximate = True
    return WindowAggregate(value, count, as_of, sources, approximate)


def _exact_percentile(points: QuerySet[MetricPoint], aggregation: str, count: int) -> float | None:
    """The percentile of the window's raw points, or None when they are no longer all kept (retention
    removed some the rollups still count)."""
    q = PERCENTILES[aggregation]
    if connection.vendor == "postgresql":
        row = points.aggregate(n=Count("id"), value=PercentileCont("value", q))
        return float(row["value"]) if row["n"] == count else None
    values = np.fromiter(points.values_list("value", flat=True), dtype=float)
    if len(values) != count:
        return None
    return float(np.percentile(values, q * 100, method="linear"))
