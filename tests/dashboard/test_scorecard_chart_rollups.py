"""Charts of a week or more read the folded part of their window from rollups (PRODUCT.md §9): the same
buckets as the raw points give, the same series as the metrics endpoint, and a chart still drawn once
raw retention has removed the older points."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from readiness.dashboard.scorecard.series import Window, chart_series
from readiness.projects.models import Project
from readiness.telemetry.models import MetricPoint, MetricRollup
from readiness.telemetry.retention import retention_apply
from readiness.telemetry.rollups.fold import rollups_fold
from readiness.telemetry.series import MAX_SERIES_POINTS, metric_summary
from tests.factories import ProjectFactory

# Neither on a minute nor an hour: every window's edges cut a rollup row.
NOW = dt.datetime(2026, 11, 22, 12, 17, 23, 500_000, tzinfo=dt.UTC)
DAYS = 30


@pytest.fixture
def project(db: None) -> Iterator[Project]:
    """30 days of latency every 7 minutes (irregular values), two labelled series, all raw."""
    with time_machine.travel(NOW, tick=False):
        project = ProjectFactory()
        rng = np.random.default_rng(11)
        steps = DAYS * 24 * 60 // 7
        MetricPoint.objects.bulk_create(
            MetricPoint(
                project=project,
                metric="latency_ms",
                ts=NOW - dt.timedelta(minutes=7 * k, seconds=int(rng.integers(0, 400))),
                value=float(rng.uniform(50, 900)),
                labels={"region": region},
                source="push:ci",
            )
            for k in range(steps)
            for region in ("eu", "us")
        )
        yield project


def windows(now: dt.datetime) -> list[Window]:
    return [
        Window("latency_ms", now - dt.timedelta(days=DAYS), now, {"region": "eu"}),
        Window("latency_ms", now - dt.timedelta(days=7), now, {"region": "eu"}),
        Window("latency_ms", now - dt.timedelta(days=2), now, {"region": "us"}),  # finer than hours: raw
    ]


def drawn(project: Project, now: dt.datetime) -> list[tuple[list[tuple[dt.datetime, float]], int, float]]:
    return [
        ([(point.ts, point.value) for point in series.points], series.count, series.mean or 0.0)
        for series in chart_series(project_id=project.pk, windows=windows(now))
    ]


def test_long_window_buckets_from_rollups_equal_those_from_raw_points(project: Project) -> None:
    with time_machine.travel(NOW, tick=False):
        from_raw = drawn(project, NOW)
        assert rollups_fold(now=NOW) > 0
        with CaptureQueriesContext(connection) as queries:
            from_rollups = drawn(project, NOW)
    assert any("telemetry_metricrollup" in query["sql"] for query in queries.captured_queries)
    for (raw_points, raw_count, raw_mean), (points, count, mean) in zip(from_raw, from_rollups, strict=True):
        assert count == raw_count and mean == pytest.approx(raw_mean, rel=1e-12)
        assert [ts for ts, _ in points] == [ts for ts, _ in raw_points]
        assert [value for _, value in points] == pytest.approx([value for _, value in raw_points], rel=1e-12)
    thirty, week, two_days = (points for points, _, _ in from_rollups)
    # Whole hours: two a bucket over 30 days, one over a week; the two days keep 500 finer buckets.
    assert 355 <= len(thirty) <= 361 and 165 <= len(week) <= 169 and len(two_days) <= MAX_SERIES_POINTS
    assert all(NOW - dt.timedelta(days=DAYS) < ts <= NOW for ts, _ in thirty)


def test_the_metrics_endpoint_series_of_a_long_window_is_the_charts(project: Project) -> None:
    with time_machine.travel(NOW, tick=False):
        rollups_fold(now=NOW)
        summary = metric_summary(
            project=project,
            metric="latency_ms",
            aggregation="mean",
            window=dt.timedelta(days=DAYS),
            now=NOW,
            labels={"region": "eu"},
        )
        chart = chart_series(project_id=project.pk, windows=windows(NOW)[:1])[0]
    assert [point.ts for point in summary.series] == [point.ts for point in chart.points]
    drawn_values = [point.value for point in chart.points]
    assert [point.value for point in summary.series] == pytest.approx(drawn_values, rel=1e-12)


def test_a_chart_window_older_than_raw_retention_is_drawn_from_rollups(project: Project) -> None:
    later = NOW + dt.timedelta(days=20)
    with time_machine.travel(NOW, tick=False):
        rollups_fold(now=NOW)
        before = drawn(project, NOW)[0]
    with time_machine.travel(later, tick=False):
        retention_apply(now=later)
        # Whole days of raw points go (a partition a day on PostgreSQL).
        horizon = later - dt.timedelta(days=settings.READINESS_RAW_RETENTION_DAYS + 1)
        assert not MetricPoint.objects.filter(ts__lt=horizon).exists()
        assert MetricRollup.objects.filter(start__lt=horizon).exists()
        # The window the scorecard of NOW saw (the report charts it), read 20 days on.
        points, count, _ = drawn(project, NOW)[0]
    assert any(ts < horizon for ts, _ in points)
    # The same chart but for the hour at its start, whose raw points (read raw: the hour's row also
    # holds points before the window) retention removed.
    first_hour = NOW - dt.timedelta(days=DAYS) + dt.timedelta(hours=1)
    assert [p for p in points if p[0] > first_hour] == [p for p in before[0] if p[0] > first_hour]
    assert before[1] - 20 <= count < before[1]
