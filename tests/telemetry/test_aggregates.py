"""Windowed aggregates in SQL against numpy (linear-interpolated percentiles), on whichever database
the suite runs (PostgreSQL in CI, SQLite by default)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from readiness.telemetry.aggregates import AGGREGATIONS, window_aggregate
from readiness.telemetry.models import MetricPoint
from tests.factories import ProjectFactory

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=24)


def numpy_reference(values: np.ndarray, aggregation: str) -> float:
    if aggregation.startswith("p"):
        return float(np.percentile(values, int(aggregation[1:]), method="linear"))
    return {
        "mean": float(np.mean(values)),
        "min": float(np.min(values)),
        "max": float(np.max(values)),
        "sum": float(np.sum(values)),
        "count": float(len(values)),
    }[aggregation]


@pytest.fixture
def points(db: None) -> tuple[int, np.ndarray]:
    project = ProjectFactory()
    rng = np.random.default_rng(7)
    values = rng.lognormal(mean=5, sigma=0.6, size=997)
    MetricPoint.objects.bulk_create(
        MetricPoint(project=project, metric="latency_ms", ts=NOW - dt.timedelta(seconds=60 * i + 1), value=v)
        for i, v in enumerate(values)
        if 60 * i + 1 < WINDOW.total_seconds()
    )
    inside = values[: sum(1 for i in range(len(values)) if 60 * i + 1 < WINDOW.total_seconds())]
    return project.pk, inside


@pytest.mark.parametrize("aggregation", [a for a in AGGREGATIONS if a != "latest"])
def test_aggregation_matches_numpy(points: tuple[int, np.ndarray], aggregation: str) -> None:
    project_id, values = points
    result = window_aggregate(
        project_id=project_id, metric="latency_ms", aggregation=aggregation, start=NOW - WINDOW, end=NOW
    )
    assert result.count == len(values)
    assert result.value == pytest.approx(numpy_reference(values, aggregation), rel=1e-9)


def test_latest_is_newest_ts_and_last_received_on_ties(db: None) -> None:
    project = ProjectFactory()
    ts = NOW - dt.timedelta(minutes=5)
    MetricPoint.objects.create(project=project, metric="accuracy", ts=ts - dt.timedelta(minutes=1), value=0.5)
    MetricPoint.objects.create(project=project, metric="accuracy", ts=ts, value=0.91)
    MetricPoint.objects.create(project=project, metric="accuracy", ts=ts, value=0.93)
    result = window_aggregate(
        project_id=project.pk, metric="accuracy", aggregation="latest", start=NOW - WINDOW, end=NOW
    )
    assert (result.value, result.count, result.as_of) == (0.93, 3, ts)


def test_window_excludes_its_start_and_includes_its_end(db: None) -> None:
    project = ProjectFactory()
    for ts, value in [(NOW - WINDOW, 1.0), (NOW - WINDOW + dt.timedelta(microseconds=1), 2.0), (NOW, 4.0)]:
        MetricPoint.objects.create(project=project, metric="m", ts=ts, value=value)
    MetricPoint.objects.create(project=project, metric="m", ts=NOW + dt.timedelta(microseconds=1), value=8.0)
    result = window_aggregate(
        project_id=project.pk, metric="m", aggregation="sum", start=NOW - WINDOW, end=NOW
    )
    assert (result.value, result.count) == (6.0, 2)


def test_labels_filter_exact_match(db: None) -> None:
    project = ProjectFactory()
    ts = NOW - dt.timedelta(minutes=1)
    MetricPoint.objects.create(project=project, metric="m", ts=ts, value=1.0, labels={"model_version": "7"})
    MetricPoint.objects.create(project=project, metric="m", ts=ts, value=10.0, labels={"model_version": "8"})
    MetricPoint.objects.create(project=project, metric="m", ts=ts, value=100.0, labels={})
    result = window_aggregate(
        project_id=project.pk,
        metric="m",
        aggregation="sum",
        start=NOW - WINDOW,
        end=NOW,
        labels={"model_version": "7"},
    )
    assert (result.value, result.count) == (1.0, 1)


def test_empty_window_has_no_value(db: None) -> None:
    project = ProjectFactory()
    for aggregation in AGGREGATIONS:
        result = window_aggregate(
            project_id=project.pk, metric="m", aggregation=aggregation, start=NOW - WINDOW, end=NOW
        )
        assert (result.value, result.count, result.as_of) == (None, 0, None)


def test_other_projects_points_are_not_counted(db: None) -> None:
    mine, theirs = ProjectFactory(), ProjectFactory()
    MetricPoint.objects.create(project=theirs, metric="m", ts=NOW, value=5.0)
    result = window_aggregate(
        project_id=mine.pk, metric="m", aggregation="count", start=NOW - WINDOW, end=NOW
    )
    assert result.count == 0
