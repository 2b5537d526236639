"""The scorecard page's charts: metric series with their threshold and warn lines (downsampled exactly as
the API's metrics endpoint does), drift distributions, health targets with their last probe, the
decision timeline, and a page whose query count does not grow with its criteria."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from readiness.scoring.drift.jobs import drift_results_compute
from readiness.scoring.drift.models import definition_fingerprint
from readiness.scoring.models import Criterion, DriftResult, Scorecard
from readiness.scoring.services import scorecard_refresh
from readiness.telemetry.models import HealthCheck, MetricPoint
from tests.conftest import Cast
from tests.factories import AttestationCriterionFactory, MetricCriterionFactory

PAGE = "/projects/fraud-detector/"
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def points(cast: Cast, metric: str, values: list[float], *, every: dt.timedelta, labels: Any = None) -> None:
    """``values`` oldest first, the newest one a minute before NOW."""
    newest = NOW - dt.timedelta(minutes=1)
    MetricPoint.objects.bulk_create(
        MetricPoint(
            project=cast.project,
            metric=metric,
            value=value,
            ts=newest - every * (len(values) - 1 - n),
            labels=labels or {},
        )
        for n, value in enumerate(values)
    )


def chart_data(response: Any) -> dict[str, Any]:
    content = response.content.decode()
    start = content.index('<script id="chart-data" type="application/json">') + len(
        '<script id="chart-data" type="application/json">'
    )
    return json.loads(content[start : content.index("</script>", start)])


def drift_criterion(cast: Cast, key: str = "score_drift", method: str = "psi") -> Criterion:
    return Criterion.objects.create(
        project=cast.project,
        key=key,
        title="Predictions have not drifted",
        dimension="data_science",
        kind="drift",
        metric="prediction_score",
        window="1d",
        method=method,
        threshold=0.2 if method == "psi" else 0.05,
        warn_threshold=0.1 if method == "psi" else None,
        reference_start=NOW - dt.timedelta(days=10),
        reference_end=NOW - dt.timedelta(days=3),
    )


# --- Metric series ---------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [50, 2000], ids=["few points as they are", "many points downsampled"])
def test_metric_chart_series_is_the_metrics_endpoints_series(
    cast: Cast, as_user: Callable, frozen: Any, count: int
) -> None:
    MetricCriterionFactory(project=cast.project, key="p99_latency", aggregation="p99", window="24h")
    rng = np.random.default_rng(7)
    points(cast, "latency_ms", list(rng.uniform(80, 400, count)), every=dt.timedelta(hours=23) / count)
    client = as_user(cast.leader)
    chart = chart_data(client.get(PAGE))["metrics"][0]
    api = client.get("/api/v1/projects/fraud-detector/metrics/latency_ms?window=24h&aggregation=p99").json()
    assert len(chart["x"]) == len(api["series"])
    # Few points as they are; many averaged into at most 500 buckets (23 of the 24 hours hold points).
    assert len(chart["x"]) == count if count <= 500 else 450 < len(chart["x"]) <= 500
    assert chart["y"] == pytest.approx([point["value"] for point in api["series"]], rel=1e-5)
    assert chart["x"][0] == dt.datetime.fromisoformat(api["series"][0]["ts"]).strftime("%Y-%m-%d %H:%M:%S")


def test_criteria_on_one_metric_and_window_read_its_points_once(
    cast: Cast, as_user: Callable, frozen: Any
) -> None:
    MetricCriterionFactory(project=cast.project, key="p99_latency", aggregation="p99", window="24h")
    MetricCriterionFactory(project=cast.project, key="mean_latency", aggregation="mean", window="24h")
    MetricCriterionFactory(project=cast.project, key="hour_latency", aggregation="max", window="1h")
    points(cast, "latency_ms", [float(n) for n in range(600)], every=dt.timedelta(minutes=2))
    with CaptureQueriesContext(connection) as queries:
        charts = chart_data(as_user(cast.leader).get(PAGE))["metrics"]
    # Each chart as if alone: the two 24-hour ones the same series, the hour its own.
    by_key = {chart["id"]: chart for chart in charts}
    assert by_key["chart-p99_latency"]["y"] == by_key["chart-mean_latency"]["y"]
    # 600 points over 20 of the 24 hours: bucketed; the hour holds 30, drawn as they are.
    assert 400 < len(by_key["chart-p99_latency"]["x"]) <= 500 and len(by_key["chart-hour_latency"]["x"]) == 30
    # But the buckets query scans two windows, not three.
    (buckets,) = [q["sql"] for q in queries.captured_queries if 'AS "bucket"' in q["sql"]]
    assert buckets.count(' AS "series"') == 2


def test_metric_chart_carries_its_window_threshold_and_warn_line(
    cast: Cast, as_user: Callable, frozen: Any
) -> None:
    MetricCriterionFactory(
        project=cast.project,
        key="max_latency",
        aggregation="max",
        window="6h",
        threshold=300,
        warn_threshold=250,
    )
    points(cast, "latency_ms", [120.0, 180.0, 320.0], every=dt.timedelta(hours=1))
    response = as_user(cast.leader).get(PAGE)
    chart = chart_data(response)["metrics"][0]
    assert (chart["threshold"], chart["warn"], chart["op"], chart["unit"]) == (300, 250, "<=", "ms")
    assert (chart["start"], chart["end"]) == ("2026-11-22 06:00:00", "2026-11-22 12:00:00")
    assert chart["y"] == [120.0, 180.0, 320.0]
    # The caption says it in words, for a reader without JavaScript.
    assert "max of latency_ms over 6h: 320; target ≤ 300 (warns above 250)." in response.content.decode()


def test_metric_chart_reads_only_the_criterions_labels_and_window(
    cast: Cast, as_user: Callable, frozen: Any
) -> None:
    Criterion.objects.filter(project=cast.project).delete()
    MetricCriterionFactory(project=cast.project, key="v7_latency", window="2h", labels={"model_version": "7"})
    points(cast, "latency_ms", [100.0, 110.0], every=dt.timedelta(minutes=10), labels={"model_version": "7"})
    points(cast, "latency_ms", [900.0], every=dt.timedelta(minutes=10), labels={"model_version": "8"})
    points(
        cast, "latency_ms", [950.0], every=dt.timedelta(hours=3), labels={"model_version": "7"}
    )  # one point
    MetricPoint.objects.filter(value=950.0).update(ts=NOW - dt.timedelta(hours=3))  # outside the window
    chart = chart_data(as_user(cast.leader).get(PAGE))["metrics"][0]
    assert chart["y"] == [100.0, 110.0]


def test_a_metric_without_data_says_so(cast: Cast, as_user: Callable, frozen: Any) -> None:
    MetricCriterionFactory(project=cast.project, key="p99_latency")
    response = as_user(cast.leader).get(PAGE)
    assert chart_data(response)["metrics"][0]["x"] == []
    assert "No data in the window." in response.content.decode()


# --- Drift -----------------------------------------------------------------------------------------


def test_drift_chart_shows_the_stored_drift_results_distributions(
    cast: Cast, as_user: Callable, frozen: Any
) -> None:
    criterion = drift_criterion(cast)
    edges = [float(n) for n in range(1, 10)]
    reference = [0.1] * 10
    current = [0.0, 0.05, 0.05, 0.1, 0.1, 0.1, 0.1, 0.15, 0.15, 0.2]
    DriftResult.objects.create(
        criterion=criterion,
        computed_at=NOW - dt.timedelta(minutes=5),
        method="psi",
        definition=definition_fingerprint(criterion),
        status="warn",
        value=0.15,
        reference_count=700,
        current_count=96,
        bins={"edges": edges, "reference": reference, "current": current},
    )
    response = as_user(cast.leader).get(PAGE)
    chart = chart_data(response)["drift"][0]
    assert chart["reference"] == [10.0] * 10
    assert chart["current"] == [0.0, 5.0, 5.0, 10.0, 10.0, 10.0, 10.0, 15.0, 15.0, 20.0]
    assert chart["ranges"][0] == "< 1" and chart["ranges"][-1] == "≥ 9" and chart["ranges"][4] == "4 to 5"
    assert "700 reference and 96 current points." in response.content.decode()


def test_drift_chart_of_a_first_evaluation_bins_both_samples_on_reference_deciles(
    cast: Cast, as_user: Callable, frozen: Any
) -> None:
    drift_criterion(cast)
    rng = np.random.default_rng(3)
    reference = rng.normal(0.3, 0.05, 400)
    current = rng.normal(0.4, 0.05, 200)
    MetricPoint.objects.bulk_create(
        MetricPoint(
            project=cast.project,
            metric="prediction_score",
            value=float(v),
            ts=NOW - dt.timedelta(days=5, minutes=n),
        )
        for n, v in enumerate(reference)
    )
    MetricPoint.objects.bulk_create(
        MetricPoint(
            project=cast.project,
            metric="prediction_score",
            value=float(v),
            ts=NOW - dt.timedelta(minutes=n + 1),
        )
        for n, v in enumerate(current)
    )
    chart = chart_data(as_user(cast.leader).get(PAGE))["drift"][0]
    # Independently: deciles of the reference, each sample's share per bin (a bin is [lo, hi)).
    edges = np.quantile(reference, np.arange(1, 10) / 10)
    bounds = np.concatenate([[-np.inf], edges, [np.inf]])
    expected_current = np.histogram(current, bins=bounds)[0] / current.size * 100
    expected_reference = np.histogram(reference, bins=bounds)[0] / reference.size * 100
    assert chart["current"] == pytest.approx(expected_current, abs=0.01)
    assert chart["reference"] == pytest.approx(expected_reference, abs=0.01)
    assert chart["current"][-1] > 50  # the shifted mean piles up in the top decile


def test_drift_with_too_few_points_says_so_and_draws_nothing(
    cast: Cast, as_user: Callable, frozen: Any
) -> None:
    drift_criterion(cast)
    points(cast, "prediction_score", [0.3] * 4, every=dt.timedelta(minutes=5))
    response = as_user(cast.leader).get(PAGE)
    assert chart_data(response)["drift"] == []
    content = response.content.decode()
    # The reason the evaluation stored with its result, not one of the chart's own.
    assert "Drift of prediction_score needs 10 samples on each side; reference has 0" in content
    assert "Nothing to compare yet." in content


def test_a_stored_missing_drift_result_says_why(cast: Cast, as_user: Callable, frozen: Any) -> None:
    criterion = drift_criterion(cast)
    DriftResult.objects.create(
        criterion=criterion,
        computed_at=NOW - dt.timedelta(minutes=5),
        method="psi",
        definition=definition_fingerprint(criterion),
        status="missing",
        reference_count=700,
        current_count=3,
        reason="drift of prediction_score needs 10 samples on each side; reference has 700, current has 3",
        bins={"edges": [float(n) for n in range(1, 10)], "reference": [0.1] * 10},
    )
    response = as_user(cast.leader).get(PAGE)
    assert chart_data(response)["drift"] == []
    assert "Drift of prediction_score needs 10 samples on each side" in response.content.decode()


def drifting_samples(cast: Cast, seed: int, current: int, *, before: dt.datetime = NOW) -> None:
    """400 reference points five days back, ``current`` points in the day before ``before``."""
    rng = np.random.default_rng(seed)
    MetricPoint.objects.bulk_create(
        MetricPoint(
            project=cast.project,
            metric="prediction_score",
            value=float(v),
            ts=NOW - dt.timedelta(days=5, minutes=n),
        )
        for n, v in enumerate(rng.normal(0.3, 0.05, 400))
    )
    points_before(cast, rng.normal(0.31, 0.05, current), before=before)


def points_before(cast: Cast, values: Any, *, before: dt.datetime) -> None:
    MetricPoint.objects.bulk_create(
        MetricPoint(
            project=cast.project,
            metric="prediction_score",
            value=float(v),
            ts=before - dt.timedelta(minutes=n + 1),
        )
        for n, v in enumerate(values)
    )


def shown(client: Any) -> tuple[dict[str, Any], float]:
    """The page's drift chart, and the value the scorecard API gives the same criterion."""
    chart = chart_data(client.get(PAGE))["drift"][0]
    api = client.get("/api/v1/projects/fraud-detector/scorecard").json()
    return chart, next(c for c in api["criteria"] if c["key"] == "score_drift")["value"]


@pytest.mark.parametrize("method", ["psi", "ks"])
def test_drift_chart_shows_the_value_the_scorecard_shows_after_later_job_runs(
    cast: Cast, as_user: Callable, frozen: Any, method: str
) -> None:
    criterion = drift_criterion(cast, method=method)
    drifting_samples(cast, 11, 200)
    drift_results_compute()
    scorecard_refresh(project=cast.project)  # reads the job's result
    used = DriftResult.objects.get()
    # Ten minutes on, more points and another job run: a new figure, but the same status, so the
    # stored scorecard (and what the page shows) stays the one computed from the first result.
    frozen.shift(dt.timedelta(minutes=10))
    points_before(
        cast, np.random.default_rng(12).normal(0.3, 0.05, 20), before=NOW + dt.timedelta(minutes=10)
    )
    drift_results_compute()
    newer = DriftResult.objects.order_by("-computed_at").first()
    assert newer.status == used.status and newer.value != used.value
    client = as_user(cast.leader)

    chart, scorecard_value = shown(client)

    assert chart["value"] == scorecard_value == used.value
    assert (chart["method"], chart["current"]) == (method, [round(s * 100, 2) for s in used.bins["current"]])
    assert chart["current"] != [round(s * 100, 2) for s in newer.bins["current"]]

    # An edit of the window re-evaluates under the new definition; with unchanged statuses no new
    # scorecard is stored, and the chart still draws the result behind the value the page shows.
    criterion.window = "2d"
    criterion.save()
    scorecard_refresh(project=cast.project)
    chart, scorecard_value = shown(client)
    assert chart["value"] == scorecard_value


def test_showing_the_scorecard_page_stores_no_drift_result(
    cast: Cast, as_user: Callable, frozen: Any
) -> None:
    drift_criterion(cast)
    drifting_samples(cast, 13, 100)
    scorecard_refresh(project=cast.project)
    stored = list(DriftResult.objects.values_list("pk", flat=True))
    # An hour on the stored result is too old for an evaluation, but the page only reads.
    frozen.shift(dt.timedelta(hours=2))
    chart, scorecard_value = shown(as_user(cast.leader))
    assert chart["value"] == scorecard_value
    assert list(DriftResult.objects.values_list("pk", flat=True)) == stored


# --- Health checks ---------------------------------------------------------------------------------


def test_health_targets_show_their_last_probe_reason_and_availability(
    cast: Cast, as_user: Callable, frozen: Any
) -> None:
    HealthCheck.objects.create(
        project=cast.project,
        name="api",
        url="http://127.0.0.1:9000/healthz",
        last_probe_at=NOW - dt.timedelta(seconds=20),
        last_up=False,
        last_reason="connection refused",
    )
    HealthCheck.objects.create(project=cast.project, name="batch", url="http://127.0.0.1:9001/healthz")
    points(cast, "health.up", [1.0, 1.0, 1.0, 0.0], every=dt.timedelta(minutes=1), labels={"target": "api"})
    points(
        cast, "health.latency_ms", [20.0, 25.0, 30.0], every=dt.timedelta(minutes=1), labels={"target": "api"}
    )
    response = as_user(cast.leader).get(PAGE)
    content = response.content.decode()
    assert "✗</span> Down" in content and "connection refused" in content
    assert "75.00%" in content and "(4 probes)" in content
    assert "Not probed yet" in content  # the batch target
    health = chart_data(response)["health"]
    api, batch = health["availability"]["traces"]
    assert (api["name"], api["y"], batch["y"]) == ("api", [100.0, 100.0, 100.0, 0.0], [])
    assert health["latency"]["traces"][0]["y"] == [20.0, 25.0, 30.0]


def test_a_project_without_health_checks_says_so(cast: Cast, as_user: Callable) -> None:
    response = as_user(cast.leader).get(PAGE)
    assert chart_data(response)["health"] is None
    assert "No health checks are configured for this project." in response.content.decode()


# --- Decision timeline -----------------------------------------------------------------------------


def test_decision_timeline_lists_each_decision_change(cast: Cast, as_user: Callable, frozen: Any) -> None:
    for days_ago, decision in ((9, "no_go"), (8, "go"), (7, "go"), (2, "no_go")):
        Scorecard.objects.create(
            project=cast.project,
            target="production",
            decision=decision,
            computed_at=NOW - dt.timedelta(days=days_ago),
            digest=f"d{days_ago}",
            payload={"dimensions": {}, "blockers": [], "criteria": []},
        )
    scorecard_refresh(project=cast.project)  # today's: no_go (nothing signed off)
    response = as_user(cast.leader).get(PAGE)
    timeline = response.context["timeline"]
    assert [change.after for change in timeline.changes] == ["no_go", "go"]  # newest first
    content = response.content.decode()
    data = json.loads(
        content.split('<script id="timeline-data" type="application/json">')[1].split("</script>")[0]
    )
    assert data["y"] == [0, 1, 1, 0, 0]
    assert "14 Nov 2026, 12:00" in content  # the go → no-go change, in words


# --- Query count -----------------------------------------------------------------------------------


def project_with(cast: Cast, criteria: int) -> None:
    """``criteria`` criteria of every kind with data behind the charts, and two health targets."""
    Criterion.objects.filter(project=cast.project).delete()
    for n in range(criteria):
        kind = ("metric", "metric", "drift", "attestation", "attestation")[n % 5]
        if kind == "metric":
            MetricCriterionFactory(project=cast.project, key=f"metric_{n}", metric=f"m{n % 4}", window="24h")
        elif kind == "drift":
            drift_criterion(cast, key=f"drift_{n}", method="ks" if n % 2 else "psi")
        else:
            AttestationCriterionFactory(project=cast.project, key=f"attested_{n}")
    for name in ("api", "batch"):
        HealthCheck.objects.get_or_create(project=cast.project, name=name, url=f"http://127.0.0.1:9/{name}")
        points(cast, "health.up", [1.0] * 30, every=dt.timedelta(minutes=10), labels={"target": name})
    for metric in ("m0", "m1", "m2", "m3"):
        points(cast, metric, list(np.linspace(1, 2, 700)), every=dt.timedelta(minutes=2))  # downsampled
    points(cast, "prediction_score", list(np.linspace(0, 1, 40)), every=dt.timedelta(minutes=30))
    MetricPoint.objects.bulk_create(
        MetricPoint(
            project=cast.project,
            metric="prediction_score",
            value=n / 40,
            ts=NOW - dt.timedelta(days=5, hours=n),
        )
        for n in range(40)
    )
    scorecard_refresh(project=cast.project)


def page_queries(client: Any) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(PAGE).status_code == 200
    return len(queries)


# Session, user, leadership check, project, scorecard, criteria, membership, pending waivers, series
# counts, raw series, bucketed series, drift results, drift samples, health checks, timeline, metric
# sources.
MAX_QUERIES = 16


@pytest.mark.parametrize("who", ["leader", "admin"])
def test_scorecard_queries_do_not_grow_with_the_criteria(
    cast: Cast, as_user: Callable, frozen: Any, django_assert_max_num_queries: Callable, who: str
) -> None:
    client = as_user(getattr(cast, who))
    project_with(cast, 5)
    few = page_queries(client)
    project_with(cast, 30)
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(PAGE)
    assert len(chart_data(response)["metrics"]) == 12 and len(response.context["charts"].drift) == 6
    assert page_queries(client) == few
