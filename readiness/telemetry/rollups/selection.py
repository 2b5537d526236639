"""Exact percentiles of a window without sorting its points (PRODUCT.md §9): picked inside the buckets
of the window's merged sketch.

The merged sketch of a window (its rollups' sketches and its raw remainder's) counts the window's values
per bucket exactly. So for each rank a percentile needs it names the bucket holding that rank and how
many values lie below the bucket; reading only the raw points inside those few buckets' value ranges and
sorting them gives the rank's exact value. The interpolation between ranks is PostgreSQL's
``percentile_cont`` on PostgreSQL and numpy's linear method on SQLite, float op for float op, so the
result is what ``telemetry.aggregates`` gets by sorting every point (the property tests compare them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np
from django.db import connection
from django.db.models import Q, QuerySet

from readiness.telemetry.models import MetricPoint
from readiness.telemetry.partitions import value_indexed_spans
from readiness.telemetry.rollups.sketch import Sketch, key_range, value_keys
from readiness.telemetry.where import where_sql

# A percentile method: (q, n, the value of each 0-based rank of the n sorted values) -> the percentile.
Interpolation = Callable[[float, int, Callable[[int], float]], float]


def selected_percentiles(
    points: QuerySet[MetricPoint],
    merged: Sketch,
    fractions: Sequence[float],
    count: int,
    *,
    start: datetime,
    end: datetime,
) -> dict[float, float] | None:
    """What sorting the window's ``points`` gives, float for float (PostgreSQL's ``percentile_cont`` there,
    numpy's linear interpolation on SQLite), without sorting the window's points; None when the raw
    points inside the buckets read are not exactly those the sketch counts.

    The merged sketch of the window (``merged``) counts its values per bucket exactly, so it says which
    bucket holds each rank wanted and how many values lie below that bucket: only the points inside
    those few buckets' value ranges are read (on PostgreSQL the value indexes of the sealed days and
    hours find them without scanning the window; ``partitions.VALUE_INDEX_COLUMNS``) and sorted. The
    ranks need nothing else: when each bucket read holds as many raw points as the sketch counts in it, its
    values are the window's, whatever retention has removed elsewhere."""
    if merged.count != count:
        return None  # points landed between the parts' reads: as if not all kept
    postgres = connection.vendor == "postgresql"
    interpolate: Interpolation = _postgres_percentile if postgres else _numpy_percentile
    ranks = set().union(*(_ranks_read(interpolate, q, count) for q in fractions))
    buckets = merged.rank_buckets(ranks)
    keys = sorted({bucket.key for bucket in buckets.values()})
    ranges = _disjoint([key_range(key) for key in keys])
    if postgres:
        read = np.fromiter(_postgres_read(points, ranges, start=start, end=end), dtype=float)
    else:
        inside = Q()
        for low, high in ranges:
            inside |= Q(value__gte=low, value__lte=high)
        read = np.fromiter(points.filter(inside).order_by().values_list("value", flat=True), dtype=float)
    read_keys = value_keys(read)
    ordered = {key: np.sort(read[read_keys == key]) for key in keys}
    if any(len(ordered[bucket.key]) != bucket.size for bucket in buckets.values()):
        # Not the points the sketch counts: some removed by retention, or a late point landed between
        # the window's reads. The caller falls back to the sketch.
        return None

    def value_at(rank: int) -> float:
        bucket = buckets[rank]
        return float(ordered[bucket.key][rank - bucket.below])

    return {q: interpolate(q, count, value_at) for q in fractions}


def _postgres_read(
    points: QuerySet[MetricPoint],
    ranges: list[tuple[float, float]],
    *,
    start: datetime,
    end: datetime,
) -> list[float]:
    """The values of ``points`` (the window ``start < ts <= end``) inside ``ranges``, read in one query.

    Where a value index holds the window's points (``partitions.value_indexed_spans``: the sealed days,
    today's sealed hours), one range scan per value range: each reads only that index, which holds the
    values, so no table row is visited; one OR of the ranges would be a bitmap scan visiting a table row
    per value, scattered over the window's days. Each span's ts bounds are the index's own, so the
    planner can prove a segment's partial index covers them. The ranges are rows joined LATERAL to the
    spans' scans, which are planned once with the range's bounds as parameters: a scan per range and
    per daily partition planned apart (30 days x 4 ranges) took 15 ms to plan against 4 ms to run;
    joined, 3.5 ms and 2 ms. The rest (the hours since the last sealed segment) has no value index and
    is read once for all the ranges.

    Written out over the window's WHERE as the ORM compiles it once (``where_sql``): a queryset built
    and compiled per span cost more than the query took to run. Bound on the client, so never a
    prepared statement: PostgreSQL's generic plan of it, which prunes no partition while planning,
    took 30 ms for a 30-day window against 4.8 ms planned afresh, and its automatic plan choice
    switched to the generic plan after five runs (the benchmark's database, 2026-12-08)."""
    where, where_params = where_sql(points)
    table, value, ts = map(connection.ops.quote_name, (MetricPoint._meta.db_table, "value", "ts"))
    spans = value_indexed_spans(start=start, end=end)
    parts: list[str] = []
    params: list[object] = []
    if spans:
        scan = (
            f"SELECT {value} FROM {table} WHERE {where} AND {ts} >= %s AND {ts} < %s "  # noqa: S608 -- our column names; the WHERE is the ORM's, with bound parameters
            f"AND {value} >= ranges.low AND {value} <= ranges.high"
        )
        parts.append(
            "SELECT found.value FROM unnest(%s::float8[], %s::float8[]) AS ranges (low, high) "  # noqa: S608 -- the scans above
            f"CROSS JOIN LATERAL ({' UNION ALL '.join([scan] * len(spans))}) AS found"
        )
        params += [[low for low, _ in ranges], [high for _, high in ranges]]
        for low, high in spans:
            params += [*where_params, low, high]
    inside = " OR ".join([f"({value} >= %s AND {value} <= %s)"] * len(ranges))
    for low, high in _unindexed(spans, start=start, end=end):
        before = "" if high is None else f" AND {ts} < %s"
        parts.append(f"SELECT {value} FROM {table} WHERE {where} AND {ts} >= %s{before} AND ({inside})")  # noqa: S608 -- our column names; the WHERE is the ORM's, with bound parameters
        params += [*where_params, low, *([] if high is None else [high])]
        params += [bound for value_range in ranges for bound in value_range]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        return [found for (found,) in cursor.fetchall()]


def _unindexed(
    spans: list[tuple[datetime, datetime]], *, start: datetime, end: datetime
) -> list[tuple[datetime, datetime | None]]:
    """The ts ranges ``[low, high)`` of the window ``start < ts <= end`` outside ``spans``, read without a
    value index; the last one's ``high`` is None (up to the window's end)."""
    gaps: list[tuple[datetime, datetime | None]] = []
    read_from = start
    for low, high in spans:
        if low > read_from:
            gaps.append((read_from, low))
        read_from = max(read_from, high)
    if read_from <= end:
        gaps.append((read_from, None))
    return gaps


def _disjoint(ranges: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The closed value ranges ``ranges`` cover, overlapping ones joined (neighbouring buckets' ranges
    overlap by their margin): a value is then read once, by one range."""
    joined: list[tuple[float, float]] = []
    for low, high in sorted(ranges):
        if joined and low <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], high))
        else:
            joined.append((low, high))
    return joined


def _ranks_read(interpolate: Interpolation, q: float, n: int) -> set[int]:
    """The ranks ``interpolate`` reads for ``q`` of ``n`` values: it runs once on placeholder values."""
    read: set[int] = set()

    def record(rank: int) -> float:
        read.add(rank)
        return 0.0

    interpolate(q, n, record)
    return read


def _postgres_percentile(q: float, n: int, value_at: Callable[[int], float]) -> float:
    """PostgreSQL's ``percentile_cont`` of ``n`` sorted values (``value_at(rank)``; orderedsetaggs.c):
    the values of ranks floor and ceil of ``q (n - 1)``, ``low + (high - low) * proportion``."""
    position = q * (n - 1)
    first, second = math.floor(position), math.ceil(position)
    low = value_at(first)
    if first == second:
        return low
    return low + (value_at(second) - low) * (position - first)


def _numpy_percentile(q: float, n: int, value_at: Callable[[int], float]) -> float:
    """numpy's ``percentile(values, 100 q, method="linear")`` of ``n`` sorted values (``value_at(rank)``),
    step by step as numpy 2 computes it (lib/_function_base_impl.py: ``_quantile``, ``_get_indexes``,
    ``_lerp``), so the same floats round the same way."""
    quantile = q * 100 / 100  # percentile's q / 100: not always q itself (0.9 * 100 / 100 > 0.9)
    position = (n - 1) * quantile
    if position >= n - 1:
        # From the last rank on, numpy reads the last value twice, with previous index -1.
        below, above, previous = n - 1, n - 1, -1
    else:
        below = math.floor(position)
        above, previous = below + 1, below
    low, high = value_at(below), value_at(above)
    gamma = position - previous
    difference = high - low
    if gamma >= 0.5:
        return high - difference * (1 - gamma)
    return low + difference * gamma
