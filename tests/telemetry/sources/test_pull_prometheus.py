"""Pulling a Prometheus source end to end: Debian's Prometheus scraping a prometheus_client exporter
that serves steady traffic, the pull storing points in MetricPoint, compared with PromQL evaluated
directly by the same Prometheus; an outage of Prometheus backfilled without gap or duplicate."""

from __future__ import annotations

import itertools
import math
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from readiness.scoring.services import scorecard_refresh
from readiness.telemetry.models import MetricPoint, MetricSource
from readiness.telemetry.pulls import pulls_run, source_read, source_run, sources_pull
from tests.factories import MetricCriterionFactory, ProjectFactory
from tests.pull_servers import Exporter, PrometheusServer
from tests.telemetry.sources.test_prometheus import ERROR_RATE, EXPECTED_ERROR_RATE, EXPECTED_P99_MS, P99_MS

pytestmark = pytest.mark.django_db

QUERIES = {"latency_ms": P99_MS, "error_rate": ERROR_RATE}


@pytest.fixture(scope="module")
def steady_traffic(prometheus: PrometheusServer, exporter: Exporter) -> Iterator[None]:
    """Every 0.2 s, 9 requests answered 200 and one 500, each taking 0.2 s: the p99 is 248.5 ms and
    the error rate 0.1 at every moment once the 5-minute rate window holds traffic."""
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            exporter.serve(duration=0.2, code="200", count=9)
            exporter.serve(duration=0.2, code="500", count=1)
            stop.wait(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    started = time.time()
    thread.start()
    prometheus.wait_for_scrapes(3)
    # A first pull reads the newest settled timestamp of the 30 s grid: wait for one where both queries
    # answer. A fixed margin after the traffic started is not enough on a busy machine, where the
    # scrapes that give a rate two samples come late (the whole module once read an empty grid point).
    grid = math.ceil((started + 3) / 30) * 30
    for _ in range(4):
        wait_until_settled_past(grid)
        if all(prometheus.instant(query, at=grid)["data"]["result"] for query in QUERIES.values()):
            break
        grid += 30
    else:
        pytest.fail("Prometheus answered no grid point with traffic within two minutes")
    yield
    stop.set()
    thread.join()


def prometheus_source(prometheus: PrometheusServer, **fields: object) -> MetricSource:
    values = {"name": "prod-prometheus", "kind": "prometheus", "url": prometheus.url, "interval": 30}
    values["queries"] = QUERIES
    values.update(fields)
    return MetricSource.objects.create(project=ProjectFactory(), **values)


def stored(source: MetricSource, metric: str) -> list[MetricPoint]:
    return list(
        MetricPoint.objects.filter(project_id=source.project_id, metric=metric, source=source.label).order_by(
            "ts"
        )
    )


def wait_until_settled_past(moment: float) -> None:
    """Sleep until the pull grid's end (now - 10 s, PRODUCT.md §8's settle) has passed ``moment``."""
    delay = moment + 10.5 - time.time()
    if delay > 0:
        time.sleep(delay)


def test_p99_and_error_rate_points_match_promql_evaluated_directly(
    prometheus: PrometheusServer, steady_traffic: None
) -> None:
    source = prometheus_source(prometheus)
    MetricCriterionFactory(
        project=source.project, key="latency_p99", metric="latency_ms", aggregation="max", threshold=300
    )

    result, count = source_run(source=source)

    assert result.errors == []
    [judged] = [
        c for c in scorecard_refresh(project=source.project).payload["criteria"] if c["key"] == "latency_p99"
    ]
    assert (judged["status"], judged["sources"]) == ("pass", ["prometheus:prod-prometheus"])
    for metric, expected in (("latency_ms", EXPECTED_P99_MS), ("error_rate", EXPECTED_ERROR_RATE)):
        points = stored(source, metric)
        assert len(points) == 1, metric  # the first run reads the last interval: one step
        point = points[0]
        reference = prometheus.instant(QUERIES[metric], at=point.ts.timestamp())["data"]["result"]
        assert point.value == pytest.approx(float(reference[0]["value"][1]), rel=1e-12)
        assert point.value == pytest.approx(expected, rel=1e-6)
        assert point.labels == {}
        assert point.ts.timestamp() % 30 == 0  # on the step's grid
    assert count == 2
    source.refresh_from_db()
    assert source.points_stored == 2
    assert source.last_success_at is not None
    assert (source.last_error, source.failing_since) == ("", None)


# Before the outage test: a raw series (no rate over a range) reads nothing around a restart.
def test_series_labels_become_point_labels_without_name(
    prometheus: PrometheusServer, steady_traffic: None
) -> None:
    source = prometheus_source(prometheus, queries={"requests": 'http_requests_total{job="fraud"}'})

    result, _ = source_run(source=source)

    assert result.errors == []
    points = stored(source, "requests")
    assert {p.labels["code"] for p in points} == {"200", "500"}
    assert all("__name__" not in p.labels and p.labels["job"] == "fraud" for p in points)


def test_an_outage_of_two_intervals_is_backfilled_without_gap_or_duplicate(
    prometheus: PrometheusServer, steady_traffic: None
) -> None:
    source = prometheus_source(prometheus)
    source_run(source=source)
    [first] = stored(source, "latency_ms")

    prometheus.stop()
    try:
        # Two more grid timestamps pass while Prometheus is down; each pull fails and says why.
        wait_until_settled_past(first.ts.timestamp() + 60)
        result, count = source_run(source=source)
        assert count == 0
        assert result.errors and "connection refused" in result.errors[0]
        source.refresh_from_db()
        assert "connection refused" in source.last_error
        failing_since = source.failing_since
        assert failing_since is not None
        source_run(source=source)
        source.refresh_from_db()
        assert source.failing_since == failing_since  # the failing run began at its first failure
    finally:
        prometheus.start()
    # Scrapes resume; the TSDB kept what it had before the outage.
    prometheus.wait_for_scrapes(2)

    result, count = source_run(source=source)
    again, count_again = source_run(source=source)

    assert result.errors == [] and count >= 4
    assert count_again == 0 and again.errors == []
    for metric in QUERIES:
        points = stored(source, metric)
        stamps = [p.ts for p in points]
        assert len(stamps) == len(set(stamps)), f"{metric}: a timestamp stored twice"
        # No gap: every 30 s from the first point to the last, the outage's timestamps included.
        assert all(b - a == timedelta(seconds=30) for a, b in itertools.pairwise(stamps))
        assert len(stamps) >= 3
        for point in points:
            reference = prometheus.instant(QUERIES[metric], at=point.ts.timestamp())["data"]["result"]
            assert point.value == pytest.approx(float(reference[0]["value"][1]), rel=1e-12)
    source.refresh_from_db()
    assert (source.last_error, source.failing_since) == ("", None)


def test_bad_promql_records_prometheus_error_and_the_good_query_still_stores(
    prometheus: PrometheusServer, steady_traffic: None
) -> None:
    source = prometheus_source(prometheus, queries={"error_rate": ERROR_RATE, "broken": "sum(rate(x[5m]"})

    _result, count = source_run(source=source)

    assert count == 1 and len(stored(source, "error_rate")) == 1
    source.refresh_from_db()
    assert source.last_error.startswith("broken: query failed (bad_data)")
    assert source.failing_since is not None and source.last_success_at is None


def test_a_source_in_a_denied_network_is_refused_at_pull(settings: object) -> None:
    # Saved around the import's check (a row written directly), so the pull's own check is what refuses.
    source = MetricSource.objects.create(
        project=ProjectFactory(),
        name="meta",
        kind="prometheus",
        url="http://169.254.169.254/",
        queries=QUERIES,
    )

    _result, count = source_run(source=source)

    assert count == 0
    source.refresh_from_db()
    assert source.last_error == "169.254.169.254 is in the denied network 169.254.0.0/16"


def test_a_silent_source_costs_its_timeout_and_never_delays_another(
    prometheus: PrometheusServer, steady_traffic: None
) -> None:
    # A server that accepts connections and never answers.
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        dead = prometheus_source(prometheus, name="dead", url=f"http://127.0.0.1:{silent.getsockname()[1]}")
        good = prometheus_source(prometheus, name="good")
        started = time.monotonic()

        report = sources_pull([dead, good], now=timezone.now(), concurrency=2)

        assert time.monotonic() - started < 13
    finally:
        silent.close()
    assert (report.pulled, report.failed, report.stored) == (2, 1, 2)
    dead.refresh_from_db()
    assert dead.last_error.endswith("no answer within 10 s") or "10 s" in dead.last_error


def test_a_cycle_claims_each_due_source_once(prometheus: PrometheusServer, steady_traffic: None) -> None:
    source = prometheus_source(prometheus)
    now = timezone.now()

    first = pulls_run(now=now)
    second = pulls_run(now=now)

    assert (first.pulled, second.pulled) == (1, 0)
    source.refresh_from_db()
    # The cadence counts from the previous due time (its creation here), not from the tick.
    assert now < source.next_pull_at <= now + timedelta(seconds=30)
    assert len(stored(source, "latency_ms")) == 1


def test_test_shows_what_would_be_stored_and_stores_nothing(
    prometheus: PrometheusServer, steady_traffic: None, capsys: pytest.CaptureFixture[str]
) -> None:
    source = prometheus_source(prometheus)

    result = source_read(source, now=timezone.now())
    call_command("readiness_source", "test", source.project.slug, source.name)

    assert sorted(p.metric for p in result.points) == ["error_rate", "latency_ms"]
    assert all(math.isfinite(p.value) for p in result.points)
    output = capsys.readouterr().out
    assert "would store 2 points" in output and "latency_ms: 1 point" in output
    assert MetricPoint.objects.filter(source=source.label).count() == 0
    source.refresh_from_db()
    assert source.last_pull_at is None


def test_run_command_stores_and_fails_loudly(
    prometheus: PrometheusServer, steady_traffic: None, capsys: pytest.CaptureFixture[str]
) -> None:
    source = prometheus_source(prometheus)
    call_command("readiness_source", "run", source.project.slug, source.name)
    assert "stored 2 points" in capsys.readouterr().out
    assert MetricPoint.objects.filter(source=source.label).count() == 2

    broken = prometheus_source(prometheus, name="broken", queries={"x": "sum("})
    with pytest.raises(CommandError, match="query failed"):
        call_command("readiness_source", "run", broken.project.slug, broken.name)
    with pytest.raises(CommandError, match="no metric source named 'nope'"):
        call_command("readiness_source", "run", source.project.slug, "nope")
    with pytest.raises(CommandError, match="unknown project"):
        call_command("readiness_source", "test", "no-such-project", "x")
