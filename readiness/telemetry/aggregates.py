"""Windowed aggregates of metric points, computed in SQL.

Once the fold has run, a window is read from rollups where they exist and raw points elsewhere
(telemetry.rollups.read says which part comes from where): count, sum, mean, min, max and latest are
exact either way; percentiles are exact up to EXACT_PERCENTILE_MAX_POINTS points while the raw points
are all kept, and from the merged sketches (within 1%, ``approximate``) otherwise.

Every aggregation a window is asked for comes from the same few queries (``window_aggregates``): one
aggregate query per part of the window (raw, rollups) computing count, sum, min, max, the newest point
and the sources at once, and one read of the raw values for all the exact percentiles asked: a sort of
them all, or, in a longer window, only of those in the sketch buckets that hold the ranks wanted
(``rollups.selection``). An evaluation asks once per (metric, labels, sources, window), not once
per criterion.

On PostgreSQL every aggregation, percentiles included (``percentile_cont``: linear interpolation between
closest ranks, as numpy's default), runs in the database. SQLite has no ``percentile_cont`` (nor
ordered ``ARRAY_AGG``), so there the window's values are read and numpy interpolates the same way, and
the newest point is one ordered query: the same results on both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    FloatField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
)

from readiness.telemetry.models import MetricPoint, MetricRollup
from readiness.telemetry.rollups.read import EXACT_PERCENTILE_MAX_POINTS, WindowPlan, window_plan
from readiness.telemetry.rollups.selection import selected_percentiles
from readiness.telemetry.rollups.sketch import Sketch, packed_merge, sketch_of, sketches_merge
from readiness.telemetry.where import where_sql

PERCENTILES: dict[str, float] = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}
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


EMPTY = WindowAggregate(None, 0, None)

# From this many points in a window, its exact percentiles are picked inside the buckets of its merged
# sketch instead of sorting all its points (``rollups.selection``): on PostgreSQL the few value ranges
# are read from the value indexes of the sealed days and hours (``partitions.VALUE_INDEX_COLUMNS``),
# not the whole window. Measured there: 30 days at one point a minute (43,200 points) 14 ms sorted,
# under 2 ms selected; 7 days (10,080) 3.6 ms sorted. Below a few thousand points a sort is as cheap as the
# selection's read plus merging the window's stored sketches.
SELECTION_MIN_POINTS = 5_000


class PercentilesCont(Aggregate):
    """PostgreSQL's ``percentile_cont`` of several fractions at once: the values are sorted once."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(ARRAY[%(fractions)s]::float8[]) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: str, fractions: Sequence[float]) -> None:
        from django.contrib.postgres.fields import ArrayField

        # Fractions are floats from PERCENTILES, never input: safe to write into the SQL.
        listed = ", ".join(repr(float(q)) for q in fractions)
        super().__init__(expression, fractions=listed, output_field=ArrayField(FloatField()))


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
    return window_aggregates(
        project_id=project_id,
        metric=metric,
        aggregations=(aggregation,),
        start=start,
        end=end,
        labels=labels,
        kinds=kinds,
        plan=plan,
    )[aggregation]


def window_aggregates(
    *,
    project_id: int,
    metric: str,
    aggregations: Iterable[str],
    start: datetime,
    end: datetime,
    labels: Mapping[str, str] | None = None,
    kinds: Sequence[str] = (),
    plan: WindowPlan | None = None,
) -> dict[str, WindowAggregate]:
    """Each of ``aggregations`` of the window ``start < ts <= end``, from one read of the window: the
    same values ``window_aggregate`` gives one at a time. ``plan`` when the caller already has it."""
    wanted = tuple(dict.fromkeys(aggregations))
    for aggregation in wanted:
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {aggregation!r}")
    points = window_points(
        project_id=project_id, metric=metric, start=start, end=end, labels=labels, kinds=kinds
    )
    if plan is None:
        plan = window_plan(project_id=project_id, metric=metric, start=start, end=end)
    if not plan.uses_rollups:
        return _raw_aggregates(wanted, points=points)
    rollups = window_rollups(project_id=project_id, metric=metric, plan=plan, labels=labels, kinds=kinds)
    return _planned_aggregates(wanted, points=points, plan=plan, rollups=rollups, start=start, end=end)


# --- One part of a window: raw points or rollup rows, summarised by one aggregate query ----------------


@dataclass(frozen=True)
class _Columns:
    """Where a part keeps what a window needs: a raw point is one value; a rollup row summarises a
    period's points (its count, sum, min, max and newest point)."""

    count: Callable[[], Aggregate]
    count_sql: str
    total: str
    low: str
    high: str
    ts: str
    id: str
    value: str


RAW = _Columns(lambda: Count("id"), "COUNT(*)", "value", "value", "value", "ts", "id", "value")
ROLLUP = _Columns(
    lambda: Sum("count"), 'SUM("count")', "sum", "min", "max", "latest_ts", "latest_id", "latest_value"
)


@dataclass(frozen=True)
class _Part:
    count: int
    total: float
    low: float | None
    high: float | None
    as_of: datetime | None
    sources: frozenset[str]
    # ts, id, value and source of the newest point (newest ts, then highest id); only when asked for.
    newest: tuple[datetime, int, float, str] | None


@dataclass(frozen=True)
class _Summary:
    """What a part's summary reads: its ``rows``, where they keep what (``columns``), whether its newest
    point is wanted, and the ``extra`` columns asked for (``_part_summaries``)."""

    rows: QuerySet
    columns: _Columns
    newest: bool
    extra: Sequence[str] = ()
    fractions: Sequence[float] = ()


def _part_summaries(*summaries: _Summary) -> list[tuple[_Part, dict[str, Any]]]:
    """Each part's summary, and the ``extra`` columns asked for, computed in the same query: "mean" (the
    database's own average of the values), and on PostgreSQL "percentiles" (``percentile_cont`` of
    ``fractions``), "values" (all of them) and "sketches" (the rollup rows' stored sketches joined).
    On PostgreSQL one query for all the parts (``_postgres_summaries``); on SQLite one aggregate query
    per part, plus one for its sources and one for its newest point."""
    if connection.vendor == "postgresql":
        rows = _postgres_summaries(summaries)
    else:
        rows = [_sqlite_summary(summary) for summary in summaries]
    return [_part_of(summary, row) for summary, row in zip(summaries, rows, strict=True)]


def _sqlite_summary(summary: _Summary) -> dict[str, Any]:
    columns, extra = summary.columns, summary.extra
    if set(extra) - {"mean"}:
        raise ValueError(f"{sorted(set(extra) - {'mean'})} are computed on PostgreSQL only")
    query: dict[str, Aggregate] = {
        "n": columns.count(),
        "total": Sum(columns.total),
        "low": Min(columns.low),
        "high": Max(columns.high),
        "as_of": Max(columns.ts),
        **({"mean": Avg(columns.value)} if "mean" in extra else {}),
    }
    return summary.rows.aggregate(**query)


def _part_of(summary: _Summary, row: dict[str, Any]) -> tuple[_Part, dict[str, Any]]:
    """The part ``row`` summarises, and the row (for its extra columns)."""
    count = int(row["n"] or 0)
    if count == 0:
        return _Part(0, 0.0, None, None, None, frozenset(), None), row
    latest = None
    rows, columns = summary.rows, summary.columns
    if "sources" in row:
        sources = frozenset(row["sources"])
        if summary.newest:
            latest = (row["as_of"], row["newest_id"], row["newest_value"], row["newest_source"])
    else:
        sources = frozenset(rows.order_by().values_list("source", flat=True).distinct())
        if summary.newest:
            ordered = rows.order_by(f"-{columns.ts}", f"-{columns.id}")
            latest = ordered.values_list(columns.ts, columns.id, columns.value, "source").first()
    part = _Part(
        count, float(row["total"]), float(row["low"]), float(row["high"]), row["as_of"], sources, latest
    )
    return part, row


def _postgres_summaries(summaries: Sequence[_Summary]) -> list[dict[str, Any]]:
    """Each part's summary row on PostgreSQL, with its sources and, when asked, its newest point in the
    same scan (one ordered ARRAY_AGG's first element per column: a part is a few edge minutes or ~850
    rollup rows, so the sort is small; a window read all raw is scanned whole anyway), all in one
    query: each part's aggregate is one row, joined to the others' (a window's raw remainder and its
    rollups, one round trip where each was one).

    Written here rather than as ORM aggregates: compiling a dozen aggregate expressions cost Django
    more than PostgreSQL takes to run the query, and an evaluation summarises two parts of each window
    of each criterion's series every 5 minutes. Only the rows' WHERE is compiled by the ORM."""
    selects: list[str] = []
    params: list[object] = []
    names: list[list[str]] = []
    for summary in summaries:
        selected = _postgres_selected(summary)
        where, where_params = where_sql(summary.rows)
        table = connection.ops.quote_name(summary.rows.model._meta.db_table)
        selects.append(f"SELECT {', '.join(selected.values())} FROM {table} WHERE {where}")  # noqa: S608 -- our column names; the WHERE is the ORM's, with bound parameters
        params += where_params
        names.append(list(selected))
    sql = " CROSS JOIN ".join(f"({select}) AS part_{index}" for index, select in enumerate(selects))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {sql}", params)  # noqa: S608 -- the parts' SQL above
        row = cursor.fetchone()
    found: list[dict[str, Any]] = []
    for part_names in names:
        found.append(dict(zip(part_names, row[: len(part_names)], strict=True)))
        row = row[len(part_names) :]
    return found


def _postgres_selected(summary: _Summary) -> dict[str, str]:
    """A part's summary columns on PostgreSQL: name -> aggregate expression."""
    columns = summary.columns
    quoted = {
        name: connection.ops.quote_name(getattr(columns, name))
        for name in ("total", "low", "high", "ts", "id", "value")
    }
    selected = {
        "n": columns.count_sql,
        "total": f"SUM({quoted['total']})",
        "low": f"MIN({quoted['low']})",
        "high": f"MAX({quoted['high']})",
        "as_of": f"MAX({quoted['ts']})",
        "sources": 'ARRAY_AGG(DISTINCT "source")',
    }
    if summary.newest:
        order = f"ORDER BY {quoted['ts']} DESC, {quoted['id']} DESC"
        for name, column in (
            ("newest_id", quoted["id"]),
            ("newest_value", quoted["value"]),
            ("newest_source", '"source"'),
        ):
            selected[name] = f"(ARRAY_AGG({column} {order}))[1]"
    for name in summary.extra:
        selected[name] = _postgres_extra(name, quoted["value"], summary.fractions)
    return selected


def _postgres_extra(name: str, value: str, fractions: Sequence[float]) -> str:
    if name == "percentiles":
        # Fractions are floats from PERCENTILES, never input: safe to write into the SQL.
        listed = ", ".join(repr(float(q)) for q in fractions)
        return f"PERCENTILE_CONT(ARRAY[{listed}]::float8[]) WITHIN GROUP (ORDER BY {value})"
    return {
        "mean": f"AVG({value})",
        "values": f"ARRAY_AGG({value})",
        "sketches": """STRING_AGG("sketch", ''::bytea)""",
    }[name]


# --- A window read raw only, and a window read from rollups plus its raw remainder ---------------------


def _raw_aggregates(wanted: tuple[str, ...], *, points: QuerySet[MetricPoint]) -> dict[str, WindowAggregate]:
    fractions = _fractions(wanted)
    extra = []
    if "mean" in wanted:
        # The database's own average, as a window read raw always gave.
        extra.append("mean")
    if fractions and connection.vendor == "postgresql":
        extra.append("percentiles")
    [(part, row)] = _part_summaries(
        _Summary(points, RAW, newest="latest" in wanted, extra=extra, fractions=fractions)
    )
    if part.count == 0:
        return dict.fromkeys(wanted, EMPTY)
    if not fractions:
        percentiles: dict[float, float] = {}
    elif "percentiles" in row:
        percentiles = dict(zip(fractions, row["percentiles"], strict=True))
    else:
        percentiles = _numpy_percentiles(_values(points), fractions)
    values = {"count": float(part.count), "sum": part.total, "min": part.low, "max": part.high}
    if "mean" in wanted:
        values["mean"] = float(row["mean"])
    return _results(wanted, part=part, values=values, percentiles=percentiles, approximate=False)


def _planned_aggregates(
    wanted: tuple[str, ...],
    *,
    points: QuerySet[MetricPoint],
    plan: WindowPlan,
    rollups: QuerySet[MetricRollup],
    start: datetime,
    end: datetime,
) -> dict[str, WindowAggregate]:
    """The window (``start < ts <= end``) from its rollup rows plus its raw remainder (``plan``);
    ``points`` is the whole window's raw points, read for exact percentiles only."""
    raw = points.filter(plan.raw)
    newest = "latest" in wanted
    fractions = _fractions(wanted)
    postgres = connection.vendor == "postgresql"
    # The window's merged sketch (past SELECTION_MIN_POINTS, or approximate) needs the raw remainder's
    # values and the rollups' stored sketches: on PostgreSQL they come in the parts' own summary queries
    # (a few edge minutes' values; the sketches' bytes joined end to end into one value).
    merging = bool(fractions) and postgres
    (raw_part, raw_row), (rollup_part, rollup_row) = _part_summaries(
        _Summary(raw, RAW, newest=newest, extra=["values"] if merging else []),
        _Summary(rollups, ROLLUP, newest=newest, extra=["sketches"] if merging else []),
    )
    parts = [raw_part, rollup_part]
    present = [part for part in parts if part.count]
    if not present:
        return dict.fromkeys(wanted, EMPTY)
    count = sum(part.count for part in present)
    low = min(part.low for part in present if part.low is not None)
    high = max(part.high for part in present if part.high is not None)
    total = sum((part.total for part in parts), 0.0)
    whole = _Part(
        count=count,
        total=total,
        low=low,
        high=high,
        as_of=max(part.as_of for part in present if part.as_of is not None),
        sources=frozenset().union(*(part.sources for part in present)),
        # Newest ts, then highest id, among the raw remainder and the rollups' latest points alike.
        newest=max((p.newest for p in present if p.newest), key=lambda n: (n[0], n[1]), default=None),
    )
    values = {"count": float(count), "sum": total, "mean": total / count, "min": low, "max": high}
    percentiles: dict[float, float] = {}
    approximate = False
    if fractions:
        parts_read = _PartsRead(
            raw=raw,
            rollups=rollups,
            remainder=np.asarray(raw_row["values"] or [], dtype=float) if merging else None,
            sketches=(rollup_row["sketches"] or b"") if merging else None,
        )
        percentiles, approximate = _window_percentiles(
            points=points, parts=parts_read, fractions=fractions, whole=whole, start=start, end=end
        )
    return _results(wanted, part=whole, values=values, percentiles=percentiles, approximate=approximate)


def _window_percentiles(
    *,
    points: QuerySet[MetricPoint],
    parts: _PartsRead,
    fractions: Sequence[float],
    whole: _Part,
    start: datetime,
    end: datetime,
) -> tuple[dict[float, float], bool]:
    """The percentiles of a window read from rollups plus its raw remainder, and whether they are
    approximate (from the merged sketch)."""
    merged: Sketch | None = None
    if whole.count <= EXACT_PERCENTILE_MAX_POINTS:
        if whole.count < SELECTION_MIN_POINTS:
            exact = _sorted_percentiles(points, fractions, whole.count)
        else:
            merged = parts.merged_sketch()
            exact = selected_percentiles(points, merged, fractions, whole.count, start=start, end=end)
        if exact is not None:
            return exact, False
    if merged is None:
        merged = parts.merged_sketch()
    return {q: merged.quantile(q, low=whole.low, high=whole.high) for q in fractions}, True


@dataclass(frozen=True)
class _PartsRead:
    """A window's two parts, for its merged sketch: the raw remainder's values and the rollups' stored
    sketches joined, each when its summary query read them already (PostgreSQL), else read here."""

    raw: QuerySet[MetricPoint]
    rollups: QuerySet[MetricRollup]
    remainder: np.ndarray | None
    sketches: bytes | None

    def merged_sketch(self) -> Sketch:
        """The sketch of the whole window: its rollups' sketches merged with the raw remainder's."""
        values = _values(self.raw) if self.remainder is None else self.remainder
        if self.sketches is None:
            stored = packed_merge(self.rollups.order_by().values_list("sketch", flat=True))
        else:
            stored = packed_merge([self.sketches])
        return sketches_merge([stored, sketch_of(values)])


def _results(
    wanted: tuple[str, ...],
    *,
    part: _Part,
    values: Mapping[str, float | None],
    percentiles: Mapping[float, float | None],
    approximate: bool,
) -> dict[str, WindowAggregate]:
    """Each wanted aggregation of a non-empty window summarised by ``part``: ``latest`` is its newest
    point (and that point's source); the others use every point (and every source)."""
    sources = tuple(sorted(part.sources))
    results: dict[str, WindowAggregate] = {}
    for aggregation in wanted:
        if aggregation == "latest":
            assert part.newest is not None  # a non-empty part asked for its newest point has one
            ts, _, value, source = part.newest
            results[aggregation] = WindowAggregate(value, part.count, ts, (source,))
        elif aggregation in PERCENTILES:
            value = percentiles[PERCENTILES[aggregation]]
            results[aggregation] = WindowAggregate(value, part.count, part.as_of, sources, approximate)
        else:
            results[aggregation] = WindowAggregate(values[aggregation], part.count, part.as_of, sources)
    return results


def _fractions(aggregations: Iterable[str]) -> list[float]:
    return [PERCENTILES[a] for a in aggregations if a in PERCENTILES]


def _values(points: QuerySet[MetricPoint]) -> np.ndarray:
    return np.fromiter(points.order_by().values_list("value", flat=True), dtype=float)


def _numpy_percentiles(values: np.ndarray, fractions: Sequence[float]) -> dict[float, float]:
    return {q: float(np.percentile(values, q * 100, method="linear")) for q in fractions}


def _sorted_percentiles(
    points: QuerySet[MetricPoint], fractions: Sequence[float], count: int
) -> dict[float, float] | None:
    """The percentiles of the window's raw points, sorted by the database (numpy on SQLite), or None
    when they are no longer all kept (retention removed some the rollups still count)."""
    if connection.vendor == "postgresql":
        row = points.aggregate(n=Count("id"), values=PercentilesCont("value", fractions))
        return dict(zip(fractions, row["values"], strict=True)) if row["n"] == count else None
    values = _values(points)
    return _numpy_percentiles(values, fractions) if len(values) == count else None
