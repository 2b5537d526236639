"""The evaluation's inputs read each metric window once for all the criteria that share it (issue 14):
the measurements equal what each criterion would read alone, and the queries do not grow with the
number of criteria."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from django.db import connection

from readiness.scoring.engine import parse_window
from readiness.scoring.inputs import evaluation_input
from readiness.scoring.models import Criterion
from readiness.telemetry.aggregates import AGGREGATIONS, window_aggregate
from readiness.telemetry.models import MetricPoint
from readiness.telemetry.rollups.fold import rollups_fold
from tests.conftest import Cast
from tests.factories import MetricCriterionFactory

NOW = dt.datetime(2026, 11, 22, 12, 0, 30, tzinfo=dt.UTC)
WINDOWS = ("1h", "24h", "7d")
# Criteria that share metric and window but not labels or sources read different windows.
SELECTIONS = [
    ({}, []),
    ({"region": "eu"}, []),
    ({}, ["probe", "prometheus"]),
    ({}, ["prometheus", "probe"]),
]
ExpectQueries = Callable[[int], AbstractContextManager]


@pytest.fixture
def history(cast: Cast) -> None:
    """Two days of points every 5 minutes from two sources and two regions, folded up to an hour ago."""
    MetricPoint.objects.bulk_create(
        MetricPoint(
            project=cast.project,
            metric="latency_ms",
            ts=NOW - dt.timedelta(minutes=5 * i, seconds=i % 7),
            value=float((i * 37) % 101),
            labels={"region": ("eu", "us")[i % 2]},
            source=("probe:api", "push:ci")[i % 3 == 0],
        )
        for i in range(2 * 24 * 12)
    )
    rollups_fold(now=NOW - dt.timedelta(hours=1))


def criteria_create(cast: Cast, selections: list[tuple[dict, list[str]]]) -> list[Criterion]:
    return [
        MetricCriterionFactory(
            project=cast.project, aggregation=aggregation, window=window, labels=labels, sources=sources
        )
        for labels, sources in selections
        for window in WINDOWS
        for aggregation in AGGREGATIONS
    ]


def test_each_criterion_measures_what_it_would_read_alone(cast: Cast, history: None) -> None:
    criteria = criteria_create(cast, SELECTIONS)
    measurements = evaluation_input(project=cast.project, target=None, now=NOW).measurements
    for criterion in criteria:
        alone = window_aggregate(
            project_id=cast.project.pk,
            metric=criterion.metric,
            aggregation=criterion.aggregation,
            start=NOW - parse_window(criterion.window),
            end=NOW,
            labels=criterion.labels,
            kinds=criterion.sources or (),
        )
        measured = measurements[criterion.key]
        assert (measured.value, measured.count, measured.as_of, measured.sources) == (
            alone.value,
            alone.count,
            alone.as_of,
            alone.sources,
        ), criterion.key
    assert all(measurements[c.key].count > 0 for c in criteria)


def test_queries_grow_with_the_windows_read_not_with_the_criteria(
    cast: Cast, history: None, django_assert_max_num_queries: ExpectQueries
) -> None:
    """30 criteria over 3 windows: one plan query, then per window its raw part and its rollups and
    one sort for all its percentiles; plus criteria, drift results, attestations, waivers, sign-offs."""
    criteria_create(cast, SELECTIONS[:1])
    # On PostgreSQL a window's two parts are summarised in one query. SQLite has no ARRAY_AGG: there
    # each part is its own aggregate, and reads its sources and its newest point apart.
    parts = 1 if connection.vendor == "postgresql" else 2 * 3
    with django_assert_max_num_queries(1 + 3 * (parts + 1) + 5):
        evaluation_input(project=cast.project, target=None, now=NOW)
