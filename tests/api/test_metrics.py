"""``GET /api/v1/projects/{slug}/metrics/{metric}``: a metric's aggregate over a window, exactly as a
criterion would see it, and a series of at most 500 points for charts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
import time_machine
from django.db import connection
from django.test import Client

from readiness.projects.models import Project
from readiness.telemetry.aggregates import AGGREGATIONS, window_aggregate
from readiness.telemetry.models import MetricPoint
from readiness.telemetry.rollups.fold import rollups_fold
from tests.api.conftest import World, assert_error

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
URL = "/api/v1/projects/fraud-detector/metrics/"


@pytest.fixture
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def client(world: World, bearer: Callable, frozen: None) -> Client:
    return bearer(world.project, ["scorecard:read"])


def add_points(
    project: Project, metric: str, points: list[tuple[dt.datetime, float]], source: str = "push:ci"
) -> None:
    MetricPoint.objects.bulk_create(
        MetricPoint(project=project, metric=metric, ts=ts, value=value, source=source) for ts, value in points
    )


def test_defaults_are_latest_over_24h(world: World, client: Client) -> None:
    add_points(world.project, "latency_ms", [(NOW - dt.timedelta(hours=2), 180.0), (NOW, 120.0)])
    body = client.get(URL + "latency_ms").json()
    assert body["metric"] == "latency_ms" and body["window"] == "24h" and body["aggregation"] == "latest"
    assert body["value"] == 120.0 and body["count"] == 2


def test_latest_ties_go_to_the_last_received_point(world: World, client: Client) -> None:
    add_points(world.project, "accuracy", [(NOW, 0.91), (NOW, 0.93)])
    assert client.get(URL + "accuracy").json()["value"] == 0.93


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_value_equals_the_window_aggregate_a_criterion_sees(
    world: World, client: Client, aggregation: str
) -> None:
    add_points(
        world.project,
        "latency_ms",
        [(NOW - dt.timedelta(minutes=7 * i), float((i * 37) % 101)) for i in range(300)],
    )
    body = client.get(URL + "latency_ms", {"window": "12h", "aggregation": aggregation}).json()
    expected = window_aggregate(
        project_id=world.project.pk,
        metric="latency_ms",
        aggregation=aggregation,
        start=NOW - dt.timedelta(hours=12),
        end=NOW,
    )
    assert body["value"] == pytest.approx(expected.value)
    assert body["count"] == expected.count == 103  # 7-minute steps: 0..102 fall in (now - 12h, now]


def test_window_excludes_its_start_and_includes_now(world: World, client: Client) -> None:
    add_points(
        world.project,
        "latency_ms",
        [(NOW - dt.timedelta(hours=1), 1.0), (NOW - dt.timedelta(minutes=59), 2.0), (NOW, 3.0)],
    )
    body = client.get(URL + "latency_ms", {"window": "1h", "aggregation": "count"}).json()
    assert body["value"] == 2.0 and [p["value"] for p in body["series"]] == [2.0, 3.0]


def test_other_metrics_and_other_projects_are_left_out(world: World, client: Client) -> None:
    add_points(world.project, "accuracy", [(NOW, 0.9)])
    add_points(world.other, "latency_ms", [(NOW, 999.0)])
    body = client.get(URL + "latency_ms").json()
    assert body["count"] == 0


def test_no_data_is_200_with_null_value(client: Client) -> None:
    response = client.get(URL + "never_pushed", {"aggregation": "p99"})
    assert response.status_code == 200
    assert response.json() == {
        "metric": "never_pushed",
        "window": "24h",
        "aggregation": "p99",
        "value": None,
        "count": 0,
        "approximate": False,
        "series": [],
        "sources": {},
    }


def test_sources_count_the_points_of_each_source(world: World, client: Client) -> None:
    minutes = [NOW - dt.timedelta(minutes=i) for i in range(3)]
    add_points(world.project, "health.up", [(ts, 1.0) for ts in minutes], "probe:api")
    add_points(world.project, "health.up", [(ts, 0.0) for ts in minutes[:2]], "probe:db")
    add_points(world.project, "health.up", [(NOW - dt.timedelta(seconds=30), 1.0)], "push:ci")
    body = client.get(URL + "health.up", {"aggregation": "mean"}).json()
    assert body["sources"] == {"probe:api": 3, "probe:db": 2, "push:ci": 1}
    assert body["count"] == 6 and body["value"] == pytest.approx(4 / 6)


def test_source_keeps_only_points_of_that_kind(world: World, client: Client) -> None:
    """What a criterion with ``sources: [probe]`` would see: the pushed point as if absent."""
    add_points(world.project, "health.up", [(NOW - dt.timedelta(minutes=1), 0.0)], "probe:api")
    add_points(world.project, "health.up", [(NOW, 1.0)], "push:ci")
    body = client.get(URL + "health.up", {"source": "probe"}).json()
    assert (body["value"], body["count"], body["sources"]) == (0.0, 1, {"probe:api": 1})
    assert [p["value"] for p in body["series"]] == [0.0]
    assert client.get(URL + "health.up", {"source": "prometheus"}).json()["count"] == 0
    assert client.get(URL + "health.up").json()["value"] == 1.0  # without it, every kind counts


@pytest.mark.parametrize("source", ["probes", "push:ci", "PROBE", "legacy"])
def test_unknown_source_kind_is_400(client: Client, source: str) -> None:
    response = client.get(URL + "health.up", {"source": source})
    assert "source" in assert_error(response, 400, "invalid_input")["details"]


def test_few_points_are_charted_as_they_are(world: World, client: Client) -> None:
    points = [(NOW - dt.timedelta(minutes=i), float(i)) for i in range(500)]
    add_points(world.project, "latency_ms", points)
    series = client.get(URL + "latency_ms").json()["series"]
    assert len(series) == 500
    assert series[0] == {"ts": "2026-11-22T03:41:00Z", "value": 499.0}
    assert series[-1] == {"ts": "2026-11-22T12:00:00Z", "value": 0.0}


def test_many_points_are_downsampled_to_at_most_500(world: World, client: Client) -> None:
    # 2,000 points over the last 24h, one every 43.2 s.
    add_points(
        world.project,
        "latency_ms",
        [(NOW - dt.timedelta(seconds=43.2 * i), float(i % 250)) for i in range(2000)],
    )
    body = client.get(URL + "latency_ms", {"aggregation": "p99"}).json()
    assert body["count"] == 2000
    assert body["value"] == pytest.approx(
        window_aggregate(
            project_id=world.project.pk,
            metric="latency_ms",
            aggregation="p99",
            start=NOW - dt.timedelta(hours=24),
            end=NOW,
        ).value
    )
    series = body["series"]
    assert 0 < len(series) <= 500
    times = [dt.datetime.fromisoformat(p["ts"]) for p in series]
    assert times == sorted(times) and NOW - dt.timedelta(hours=24) < times[0] and times[-1] <= NOW


def test_downsampled_series_averages_each_bucket_at_its_middle(world: World, client: Client) -> None:
    # A 500m window makes 500 one-minute buckets; two points in each, averaging to the bucket number.
    start = NOW - dt.timedelta(minutes=500)
    points = []
    for i in range(500):
        bucket = start + dt.timedelta(minutes=i)
        points += [(bucket + dt.timedelta(seconds=10), i - 1.0), (bucket + dt.timedelta(seconds=40), i + 1.0)]
    add_points(world.project, "latency_ms", points)
    series = client.get(URL + "latency_ms", {"window": "500m", "aggregation": "mean"}).json()["series"]
    assert len(series) == 500
    for i in (0, 1, 250, 499):
        assert series[i]["value"] == pytest.approx(i)
        assert dt.datetime.fromisoformat(series[i]["ts"]) == start + dt.timedelta(minutes=i, seconds=30)


def test_a_point_at_the_window_end_joins_the_last_bucket(world: World, client: Client) -> None:
    start = NOW - dt.timedelta(minutes=500)
    points = [(start + dt.timedelta(minutes=i, seconds=30), 0.0) for i in range(500)] + [(NOW, 10.0)]
    add_points(world.project, "latency_ms", points)
    series = client.get(URL + "latency_ms", {"window": "500m"}).json()["series"]
    assert len(series) == 500 and series[-1]["value"] == pytest.approx(5.0)


@pytest.mark.parametrize("metric", ["health.up", "ns:requests_total", "a"])
def test_metric_names_with_dots_and_colons_are_served(world: World, client: Client, metric: str) -> None:
    add_points(world.project, metric, [(NOW, 1.0)])
    body = client.get(URL + metric).json()
    assert body["metric"] == metric and body["value"] == 1.0


@pytest.mark.parametrize("metric", ["Latency", "1latency", "latency-ms", "x" * 101, "lat%20ency"])
def test_bad_metric_name_is_400(client: Client, metric: str) -> None:
    assert "metric" in assert_error(client.get(URL + metric), 400, "invalid_input")["details"]


@pytest.mark.parametrize("window", ["0h", "24", "1w", "h", "-1h", "1.5h", "01h", "401d", "9999999999d"])
def test_bad_window_is_400(client: Client, window: str) -> None:
    response = client.get(URL + "latency_ms", {"window": window})
    assert "window" in assert_error(response, 400, "invalid_input")["details"]


def test_window_longer_than_data_is_kept_is_400_naming_the_retention(client: Client) -> None:
    # PRODUCT.md §9: a window may be at most the rollup retention (400 days by default).
    assert client.get(URL + "latency_ms", {"window": "400d"}).status_code == 200
    assert client.get(URL + "latency_ms", {"window": "9600h"}).status_code == 200
    response = client.get(URL + "latency_ms", {"window": "9601h"})
    details = assert_error(response, 400, "invalid_input")["details"]
    assert "longer than the 400d that metric data is kept" in details["window"][0]


@pytest.mark.parametrize("aggregation", ["median", "P99", "avg"])
def test_bad_aggregation_is_400(client: Client, aggregation: str) -> None:
    response = client.get(URL + "latency_ms", {"aggregation": aggregation})
    assert "aggregation" in assert_error(response, 400, "invalid_input")["details"]


def test_metric_query_count_does_not_grow_with_points(
    world: World, client: Client, django_assert_max_num_queries: Callable
) -> None:
    add_points(
        world.project, "latency_ms", [(NOW - dt.timedelta(seconds=43.2 * i), 1.0) for i in range(2000)]
    )
    # 7: the window's plan (how far rollups reach) is one query of its own. SQLite has neither ArrayAgg
    # nor percentile_cont: the window's sources and its values are read by one query each more.
    with django_assert_max_num_queries(7 if connection.vendor == "postgresql" else 9):
        assert len(client.get(URL + "latency_ms", {"aggregation": "p95"}).json()["series"]) == 500


def test_a_percentile_from_rollup_sketches_is_marked_approximate(world: World, client: Client) -> None:
    first = NOW - dt.timedelta(days=29)
    values = [10.0 + (i % 97) for i in range(576)]
    add_points(
        world.project, "latency_ms", [(first + dt.timedelta(minutes=5 * i), v) for i, v in enumerate(values)]
    )
    rollups_fold(now=NOW)
    exact = client.get(URL + "latency_ms", {"window": "30d", "aggregation": "p99"}).json()
    assert exact["approximate"] is False
    # Raw retention removes the points; the rollups still answer, the percentile from their sketches.
    MetricPoint.objects.filter(project=world.project).delete()
    body = client.get(URL + "latency_ms", {"window": "30d", "aggregation": "p99"}).json()
    assert body["approximate"] is True
    assert body["count"] == 576 and body["sources"] == {"push:ci": 576}
    assert body["value"] == pytest.approx(exact["value"], rel=0.01)
    assert sum(1 for _ in body["series"]) > 0
    mean = client.get(URL + "latency_ms", {"window": "30d", "aggregation": "mean"}).json()
    assert (mean["approximate"], mean["value"]) == (False, pytest.approx(sum(values) / len(values)))
