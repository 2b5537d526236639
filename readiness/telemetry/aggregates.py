"""Windowed aggregates of metric points, computed in SQL.

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

from readiness.telemetry.models import MetricPoint

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
    for key, value in (labels or {}).items():
        # Keys are validated as [a-z_][a-z0-9_]* on the way in, so they are safe as lookup paths.
        qs = qs.filter(**{f"labels__{key}": value})
    if kinds:
        qs = qs.filter(kinds_filter(kinds))
    return qs


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
) -> WindowAggregate:
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}")
    points = window_points(
        project_id=project_id, metric=metric, start=start, end=end, labels=labels, kinds=kinds
    )
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
