"""Aggregation over rollups plus raw points equals aggregation over raw points alone (PRODUCT.md §9):
count, sum, mean, min, max and latest exactly, percentiles exactly while the raw points are all kept
and within 1% from the sketches once they are not; label and source filters alike on both."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import time_machine
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from readiness.telemetry import aggregates, partitions
from readiness.telemetry.aggregates import AGGREGATIONS, window_aggregate, window_aggregates
from readiness.telemetry.models import MetricPoint, MetricRollup, RollupDirtyMinute, RollupWatermark
from readiness.telemetry.partitions import partition_name
from readiness.telemetry.rollups.fold import rollups_fold
from readiness.telemetry.rollups.read import window_plan, window_plans
from readiness.telemetry.rollups.sketch import LOG_GAMMA, MIN_MAGNITUDE
from tests.factories import ProjectFactory
from tests.plans import plan_without_table_scans

# The points span midnight: on PostgreSQL the first day is sealed whole, the second partly (``sealed``).
BASE = dt.datetime(2026, 11, 22, 22, 0, tzinfo=dt.UTC)
SPAN = 4 * 3600  # seconds of points
SOURCES = ["push:ci", "probe:api", "prometheus:prod"]
PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@dataclass(frozen=True)
class Sent:
    offset: int  # seconds after BASE
    value: float
    region: str
    source: str


values = st.one_of(
    st.just(0.0),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=1_000).map(float),
)


def sent_points_of(value: st.SearchStrategy[float]) -> st.SearchStrategy[list[Sent]]:
    return st.lists(
        st.builds(
            Sent,
            # Offsets on a coarse grid too, so equal timestamps (the tie rule of latest) happen.
            offset=st.one_of(st.integers(0, SPAN), st.integers(0, SPAN // 600).map(lambda k: 600 * k)),
            value=value,
            region=st.sampled_from(["eu", "us"]),
            source=st.sampled_from(SOURCES),
        ),
        min_size=1,
        max_size=80,
    )


sent_points = sent_points_of(values)


def _nudged(value: float, steps: int) -> float:
    """``value`` moved by ``steps`` floats up (or down)."""
    for _ in range(abs(steps)):
        value = float(np.nextafter(value, math.inf if steps > 0 else -math.inf))
    return value


# Values that crowd a few sketch buckets (so a rank is picked among many of its bucket's values, ties
# included), sit on bucket edges or next to them, or round to the zero bucket; negatives alike.
crowded = st.builds(
    lambda index, steps, sign: sign * _nudged(math.exp(index * LOG_GAMMA), steps),
    st.integers(230, 233),
    st.integers(-2, 2),
    st.sampled_from([1.0, 1.0, -1.0]),
)
percentile_values = st.one_of(
    values,
    crowded,
    st.sampled_from([100.0, 100.5, 101.0, 101.5, -100.0, 0.0]),
    st.builds(_nudged, st.sampled_from([MIN_MAGNITUDE, -MIN_MAGNITUDE, 0.0]), st.integers(-2, 2)),
)
filters = st.sampled_from(
    [({}, ()), ({"region": "eu"}, ()), ({}, ("push",)), ({"region": "us"}, ("probe", "prometheus"))]
)
EXACT = ["count", "sum", "mean", "min", "max", "latest", "p50", "p99"]


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with time_machine.travel(BASE + dt.timedelta(seconds=SPAN + 3600), tick=False):
        yield


# When the hourly sealing job last ran (on PostgreSQL): the second day's first hour is sealed.
SEALED_AT = BASE + dt.timedelta(hours=3, minutes=30)


@pytest.fixture(autouse=True)
def sealed(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL the points' two days have partitions, sealed as the hourly job leaves them at
    SEALED_AT with hour-long segments: the first day by its whole value index, the second's first hour
    by a segment's, the rest of it by none. A window over the points reads them each of those ways, in
    one UNION ALL (``rollups.selection``)."""
    if connection.vendor != "postgresql":
        return
    monkeypatch.setattr(partitions, "SEGMENT_HOURS", 1)
    partitions.partitions_ensure(start=BASE.date(), end=BASE.date() + dt.timedelta(days=1))
    partitions.partitions_value_indexed(now=SEALED_AT)


def store(project_id: int, sent: list[Sent]) -> list[MetricPoint]:
    MetricPoint.objects.filter(project_id=project_id).delete()
    for model in (MetricRollup, RollupDirtyMinute, RollupWatermark):
        model.objects.all().delete()
    points = [
        MetricPoint(
            project_id=project_id,
            metric="latency_ms",
            ts=BASE + dt.timedelta(seconds=s.offset, microseconds=0),
            value=s.value,
            labels={"region": s.region, "model": "m1"},
            source=s.source,
        )
        for s in sent
    ]
    return MetricPoint.objects.bulk_create(points)


def reference(points: list[MetricPoint], aggregation: str) -> tuple[float | None, int, tuple[str, ...]]:
    if not points:
        return None, 0, ()
    if aggregation == "latest":
        newest = max(points, key=lambda p: (p.ts, p.pk))
        return newest.value, len(points), (newest.source,)
    data = np.array([p.value for p in points])
    value = {
        "count": float(len(data)),
        "sum": float(np.sum(data)),
        "mean": float(np.mean(data)),
        "min": float(np.min(data)),
        "max": float(np.max(data)),
        "p50": float(np.percentile(data, 50, method="linear")),
        "p99": float(np.percentile(data, 99, method="linear")),
    }[aggregation]
    return value, len(points), tuple(sorted({p.source for p in points}))


def window_read(project_id: int, window: tuple[int, int], selection: tuple[dict, tuple]) -> dict[str, Any]:
    """The arguments of a window read: ``window``'s seconds after BASE, in either order, and the
    ``selection``'s labels and source kinds."""
    labels, kinds = selection
    return {
        "project_id": project_id,
        "metric": "latency_ms",
        "start": BASE + dt.timedelta(seconds=min(window)),
        "end": BASE + dt.timedelta(seconds=max(window)),
        "labels": labels,
        "kinds": kinds,
    }


@PROPERTY
@given(
    sent=sent_points,
    folded_at=st.integers(0, SPAN + 600),
    window=st.tuples(st.integers(-60, SPAN), st.integers(0, SPAN + 60)),
    selection=filters,
)
def test_rollups_plus_raw_equal_raw_alone(
    db: None, sent: list[Sent], folded_at: int, window: tuple[int, int], selection: tuple[dict, tuple]
) -> None:
    project = ProjectFactory()
    points = store(project.pk, sent)
    rollups_fold(now=BASE + dt.timedelta(seconds=folded_at))
    start, end = BASE + dt.timedelta(seconds=min(window)), BASE + dt.timedelta(seconds=max(window))
    labels, kinds = selection
    inside = [
        p
        for p in points
        if start < p.ts <= end
        and all(p.labels[k] == v for k, v in labels.items())
        and (not kinds or p.source.split(":")[0] in kinds)
    ]
    plan = window_plan(project_id=project.pk, metric="latency_ms", start=start, end=end)
    event("window read from rollups and raw" if plan.uses_rollups else "window read raw only")
    # The scale of the values, for the absolute part of the tolerance of sums that cancel out.
    scale = sum(abs(p.value) for p in inside) or 1.0
    for aggregation in EXACT:
        result = window_aggregate(
            project_id=project.pk,
            metric="latency_ms",
            aggregation=aggregation,
            start=start,
            end=end,
            labels=labels,
            kinds=kinds,
        )
        value, count, sources = reference(inside, aggregation)
        assert (result.count, result.sources) == (count, sources), aggregation
        assert result.approximate is False
        if value is None:
            assert result.value is None
        else:
            assert result.value == pytest.approx(value, rel=1e-9, abs=1e-12 * scale), aggregation


@PROPERTY
@given(
    sent=sent_points_of(percentile_values),
    folded_at=st.integers(0, SPAN + 600),
    window=st.tuples(st.integers(-60, SPAN), st.integers(0, SPAN + 60)),
    selection=filters,
)
def test_exact_percentiles_of_rollups_plus_raw_equal_a_sort_of_the_raw_points_bit_for_bit(
    db: None,
    monkeypatch: pytest.MonkeyPatch,
    sent: list[Sent],
    folded_at: int,
    window: tuple[int, int],
    selection: tuple[dict, tuple],
) -> None:
    """Ranks picked inside the merged sketch's buckets give what sorting every raw point of the window
    gives, float for float: PostgreSQL's own ``percentile_cont`` there, numpy's on SQLite."""
    # The selection starts at 5,000 points, where the sort costs more; here it runs on every window.
    monkeypatch.setattr(aggregates, "SELECTION_MIN_POINTS", 0)
    project = ProjectFactory()
    store(project.pk, sent)
    rollups_fold(now=BASE + dt.timedelta(seconds=folded_at))
    read = window_read(project.pk, window, selection)
    plan = window_plan(project_id=project.pk, metric="latency_ms", start=read["start"], end=read["end"])
    event("window read from rollups and raw" if plan.uses_rollups else "window read raw only")
    results = window_aggregates(**read, aggregations=list(aggregates.PERCENTILES))
    points = aggregates.window_points(**read)
    fractions = list(aggregates.PERCENTILES.values())
    if not points.exists():
        assert all(result.value is None for result in results.values())
        return
    if connection.vendor == "postgresql":
        row = points.aggregate(values=aggregates.PercentilesCont("value", fractions))
        expected = dict(zip(aggregates.PERCENTILES, row["values"], strict=True))
    else:
        data = np.array(points.values_list("value", flat=True))
        expected = {
            a: float(np.percentile(data, q * 100, method="linear")) for a, q in aggregates.PERCENTILES.items()
        }
    for aggregation, result in results.items():
        assert result.approximate is False
        # Equal as floats; a tie between 0.0 and -0.0 may put either first in a sort, as in the database's.
        assert result.value == expected[aggregation], aggregation


@PROPERTY
@given(
    sent=sent_points,
    folded_at=st.integers(0, SPAN + 600),
    window=st.tuples(st.integers(-60, SPAN), st.integers(0, SPAN + 60)),
    selection=filters,
    asked=st.lists(st.sampled_from(AGGREGATIONS), min_size=1, max_size=len(AGGREGATIONS)),
)
def test_one_read_of_a_window_equals_one_read_per_aggregation(
    db: None,
    sent: list[Sent],
    folded_at: int,
    window: tuple[int, int],
    selection: tuple[dict, tuple],
    asked: list[str],
) -> None:
    """What an evaluation does for the criteria sharing a window gives, value for value and bit for
    bit, what each criterion would read alone (the metric API's single read)."""
    project = ProjectFactory()
    store(project.pk, sent)
    rollups_fold(now=BASE + dt.timedelta(seconds=folded_at))
    read = window_read(project.pk, window, selection)
    batched = window_aggregates(**read, aggregations=asked)
    assert batched == {
        aggregation: window_aggregate(**read, aggregation=aggregation) for aggregation in asked
    }


def test_percentiles_of_one_read_beyond_the_exact_limit_equal_single_reads(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = ProjectFactory()
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    series_of_a_month(project.pk, start, days=2)
    end = start + dt.timedelta(days=2)
    with time_machine.travel(end + dt.timedelta(hours=1), tick=False):
        rollups_fold(now=end + dt.timedelta(hours=1))
        monkeypatch.setattr(aggregates, "EXACT_PERCENTILE_MAX_POINTS", 500)
        window = {"project_id": project.pk, "metric": "latency_ms", "start": start, "end": end}
        batched = window_aggregates(**window, aggregations=AGGREGATIONS)
        single = {a: window_aggregate(**window, aggregation=a) for a in AGGREGATIONS}
    assert {a for a, result in batched.items() if result.approximate} == {"p50", "p90", "p95", "p99"}
    assert batched == single


def test_an_unknown_aggregation_is_refused_by_name(db: None) -> None:
    window = {"project_id": ProjectFactory().pk, "metric": "m", "start": BASE, "end": BASE}
    with pytest.raises(ValueError, match="unknown aggregation 'p42'"):
        window_aggregates(**window, aggregations=["count", "p42"])


def series_of_a_month(project_id: int, start: dt.datetime, days: int) -> np.ndarray:
    """One point every 5 minutes for ``days`` days after ``start``: lognormal latencies."""
    rng = np.random.default_rng(11)
    n = days * 24 * 12
    data = rng.lognormal(mean=4, sigma=0.7, size=n)
    MetricPoint.objects.bulk_create(
        (
            MetricPoint(
                project_id=project_id,
                metric="latency_ms",
                ts=start + dt.timedelta(minutes=5 * i + 1),
                value=float(v),
                source="probe:api",
            )
            for i, v in enumerate(data)
        ),
        batch_size=5_000,
    )
    return data


@pytest.fixture(params=["sorted", "selected"])
def exact_read(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Exact percentiles from a sort of the window's points, or picked inside its sketch's buckets
    (from SELECTION_MIN_POINTS on, here lowered below the test's windows)."""
    if request.param == "selected":
        monkeypatch.setattr(aggregates, "SELECTION_MIN_POINTS", 0)
    return request.param


def test_a_window_older_than_raw_retention_is_answered_from_rollups(db: None, exact_read: str) -> None:
    project = ProjectFactory()
    start = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    data = series_of_a_month(project.pk, start, days=10)
    end = start + dt.timedelta(days=10)
    with time_machine.travel(end + dt.timedelta(hours=1), tick=False):
        rollups_fold(now=end + dt.timedelta(hours=1))
    # 40 days later raw retention (35 days) has removed those points; the rollups remain.
    with time_machine.travel(end + dt.timedelta(days=40), tick=False):
        MetricPoint.objects.filter(ts__lt=end + dt.timedelta(days=5)).delete()
        window = {"project_id": project.pk, "metric": "latency_ms", "start": start, "end": end}
        assert window_aggregate(**window, aggregation="count").count == len(data)
        assert window_aggregate(**window, aggregation="mean").value == pytest.approx(
            float(np.mean(data)), rel=1e-9
        )
        assert window_aggregate(**window, aggregation="max").value == float(np.max(data))
        p99 = window_aggregate(**window, aggregation="p99")
        assert p99.approximate is True
        expected = float(np.percentile(data, 99, method="linear"))
        assert p99.value == pytest.approx(expected, rel=0.01)
        assert p99.sources == ("probe:api",)


def test_selected_percentiles_stay_exact_when_retention_removed_points_outside_their_buckets(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The selection needs only the raw points inside the buckets that hold the ranks: points removed
    elsewhere (by retention; the rollups still count them) leave the percentiles exact, not sketched."""
    monkeypatch.setattr(aggregates, "SELECTION_MIN_POINTS", 0)
    project = ProjectFactory()
    start = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    # The first day's points are tiny values, in buckets far below every rank from p50 up.
    tiny = [
        MetricPoint(
            project_id=project.pk,
            metric="latency_ms",
            ts=start + dt.timedelta(minutes=5 * i + 1),
            value=0.001 * (1 + i / 288),
            source="probe:api",
        )
        for i in range(288)
    ]
    MetricPoint.objects.bulk_create(tiny)
    later = series_of_a_month(project.pk, start + dt.timedelta(days=1), days=3)
    data = np.concatenate([[point.value for point in tiny], later])
    end = start + dt.timedelta(days=4)
    with time_machine.travel(end + dt.timedelta(hours=1), tick=False):
        rollups_fold(now=end + dt.timedelta(hours=1))
        MetricPoint.objects.filter(ts__lt=start + dt.timedelta(days=1)).delete()
        window = {"project_id": project.pk, "metric": "latency_ms", "start": start, "end": end}
        results = window_aggregates(**window, aggregations=list(aggregates.PERCENTILES))
    for aggregation, q in aggregates.PERCENTILES.items():
        assert results[aggregation].approximate is False
        assert results[aggregation].count == len(data)
        assert results[aggregation].value == pytest.approx(
            float(np.percentile(data, q * 100, method="linear")), rel=1e-12
        )


def test_a_value_on_the_edge_of_two_buckets_read_is_counted_once(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neighbouring buckets' value ranges overlap by a margin; when the ranks lie in both, the value on
    their shared edge is read once (not twice, which would look like a late point and fall back to the
    sketch)."""
    monkeypatch.setattr(aggregates, "SELECTION_MIN_POINTS", 0)
    edge = math.exp(10 * LOG_GAMMA)
    # p50 lies below the edge, p90 to p99 above it: both buckets are read, and the edge value with them
    # (sent first: before midnight, in the day sealed whole, where each value range is its own scan).
    values = [edge] + [edge / 1.005] * 150 + [edge * 1.005] * 50
    points = [Sent(60 * i, value, "eu", "push:ci") for i, value in enumerate(values)]
    project = ProjectFactory()
    store(project.pk, points)
    rollups_fold(now=BASE + dt.timedelta(seconds=SPAN + 600))
    window = {"project_id": project.pk, "metric": "latency_ms", "start": BASE - dt.timedelta(minutes=1)}
    results = window_aggregates(
        **window, end=BASE + dt.timedelta(seconds=SPAN), aggregations=list(aggregates.PERCENTILES)
    )
    for aggregation, q in aggregates.PERCENTILES.items():
        assert results[aggregation].approximate is False
        assert results[aggregation].value == float(np.percentile(values, q * 100, method="linear"))


def test_percentiles_come_from_sketches_beyond_the_exact_limit(
    db: None, monkeypatch: pytest.MonkeyPatch, exact_read: str
) -> None:
    project = ProjectFactory()
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    data = series_of_a_month(project.pk, start, days=2)
    end = start + dt.timedelta(days=2)
    with time_machine.travel(end + dt.timedelta(hours=1), tick=False):
        rollups_fold(now=end + dt.timedelta(hours=1))
        window = {"project_id": project.pk, "metric": "latency_ms", "start": start, "end": end}
        exact = window_aggregate(**window, aggregation="p95")
        assert exact.approximate is False
        assert exact.value == pytest.approx(float(np.percentile(data, 95, method="linear")), rel=1e-9)
        # The limit is 100,000 points; storing that many would cost the suite seconds, so the test
        # lowers it below this window's 576 points.
        monkeypatch.setattr(aggregates, "EXACT_PERCENTILE_MAX_POINTS", 500)
        sketched = window_aggregate(**window, aggregation="p95")
        assert sketched.approximate is True
        assert sketched.count == len(data)
        assert sketched.value == pytest.approx(exact.value, rel=0.01)


def test_a_dirty_minute_beyond_the_evaluations_raw_horizon_is_read_from_rollups(db: None) -> None:
    """The raw horizon is the evaluation's ``now`` less raw retention, whatever the clock says: an
    evaluation "as of" a later moment reads the rollup of a minute whose raw points it may have lost."""
    project = ProjectFactory()
    store(project.pk, [Sent(offset, 1.0, "eu", "push:ci") for offset in range(0, SPAN, 60)])
    rollups_fold(now=BASE + dt.timedelta(seconds=SPAN + 600))
    dirty = BASE + dt.timedelta(hours=2)
    RollupDirtyMinute.objects.create(project_id=project.pk, metric="latency_ms", minute=dirty)
    window = {
        "project_id": project.pk,
        "metric": "latency_ms",
        "start": BASE,
        "end": BASE + dt.timedelta(hours=3),
    }
    soon = window_plan(**window, now=BASE + dt.timedelta(hours=4))
    later = window_plan(**window, now=dirty + dt.timedelta(days=36))
    assert soon.raw == (
        Q(ts__gt=BASE, ts__lt=BASE + dt.timedelta(minutes=1)) | Q(ts__gte=dirty, ts__lte=window["end"])
    )
    assert later.raw == (
        Q(ts__gt=BASE, ts__lt=BASE + dt.timedelta(minutes=1))
        | Q(ts__gte=window["end"], ts__lte=window["end"])
    )


def test_the_windows_of_a_metric_are_planned_in_one_query(
    db: None, django_assert_num_queries: Callable[..., AbstractContextManager]
) -> None:
    project = ProjectFactory()
    store(project.pk, [Sent(offset, 1.0, "eu", "push:ci") for offset in range(0, SPAN, 60)])
    rollups_fold(now=BASE + dt.timedelta(seconds=SPAN + 600))
    end = BASE + dt.timedelta(seconds=SPAN)
    # Late points in the first whole minute of the half-hour window: that window is read raw only.
    late = end - dt.timedelta(minutes=29)
    RollupDirtyMinute.objects.create(project_id=project.pk, metric="latency_ms", minute=late)
    windows = [(end - dt.timedelta(hours=hours), end) for hours in (0.5, 2, 4)]
    with django_assert_num_queries(1):
        plans = window_plans(project_id=project.pk, metric="latency_ms", windows=windows, now=end)
    assert plans == [
        window_plan(project_id=project.pk, metric="latency_ms", start=start, end=end, now=end)
        for start, end in windows
    ]
    assert [plan.uses_rollups for plan in plans] == [False, True, True]


@pytest.fixture
def window(db: None) -> dict[str, Any]:
    """Four hours of a point a minute across the two days (``sealed``), folded: a window's arguments."""
    project = ProjectFactory()
    store(project.pk, [Sent(offset, float(offset % 97), "eu", "push:ci") for offset in range(0, SPAN, 60)])
    rollups_fold(now=BASE + dt.timedelta(seconds=SPAN + 600))
    return {
        "project_id": project.pk,
        "metric": "latency_ms",
        "start": BASE,
        "end": BASE + dt.timedelta(hours=4),
    }


@pytest.mark.skipif(connection.vendor != "postgresql", reason="value indexes exist on PostgreSQL only")
def test_a_windows_sealed_day_and_hours_are_read_through_their_value_indexes(
    window: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aggregates, "SELECTION_MIN_POINTS", 0)
    with CaptureQueriesContext(connection) as queries:
        results = window_aggregates(**window, aggregations=["p50", "p99"])
    assert results["p99"].approximate is False
    (selection,) = [query["sql"] for query in queries if "UNION ALL" in query["sql"]]
    plan = plan_without_table_scans(selection)
    first_day, second_day = (partition_name(BASE.date() + dt.timedelta(days=n)) for n in (0, 1))
    assert f"using {first_day}_value on" in plan
    assert f"using {second_day}_value_0001 on" in plan


@pytest.mark.skipif(connection.vendor != "postgresql", reason="value indexes exist on PostgreSQL only")
def test_a_selection_planned_from_a_stale_catalog_read_gives_the_sorted_percentiles(
    window: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process plans a selection from its catalog read of the last minute
    (``partitions.SPANS_CATALOG_SECONDS``): an index dropped since, or built since, only changes how
    a span is read, never which points."""
    wanted = ["p50", "p90", "p99"]
    monkeypatch.setattr(aggregates, "SELECTION_MIN_POINTS", 10**9)
    sorted_values = window_aggregates(**window, aggregations=wanted)
    monkeypatch.setattr(aggregates, "SELECTION_MIN_POINTS", 0)
    spans = partitions.value_indexed_spans(start=window["start"], end=window["end"])
    first_day, second_day = (partition_name(BASE.date() + dt.timedelta(days=n)) for n in (0, 1))
    with connection.cursor() as cursor:
        # The first day's whole index gone (the catalog read still names it); the second day's next
        # hour sealed by hand (the catalog read does not know it).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the points' foreign keys, checked before DDL
        cursor.execute(f'DROP INDEX "{first_day}_value"')
        cursor.execute(
            f'CREATE INDEX "{second_day}_value_0102" ON "{second_day}" {partitions.VALUE_INDEX_COLUMNS} '
            f"WHERE ts >= '{BASE + dt.timedelta(days=1, hours=1):%Y-%m-%d %H:%M}+00' "
            f"AND ts < '{BASE + dt.timedelta(days=1, hours=2):%Y-%m-%d %H:%M}+00'"
        )
    assert partitions.value_indexed_spans(start=window["start"], end=window["end"]) == spans

    selected = window_aggregates(**window, aggregations=wanted)
    assert {key: (r.value, r.approximate) for key, r in selected.items()} == {
        key: (r.value, False) for key, r in sorted_values.items()
    }
