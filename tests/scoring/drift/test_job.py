"""The periodic drift job against the database: what it computes and stores, what the evaluation then
reads, and when the projects are re-evaluated. Statistics are checked against numpy and scipy computed
here, on the same samples, independently of readiness.scoring.drift.stats."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import time_machine
from scipy import stats

from readiness.scoring.drift.jobs import DRIFT_RESULT_RETENTION, drift_results_compute, drift_results_ensure
from readiness.scoring.drift.selectors import DRIFT_RESULT_MAX_AGE
from readiness.scoring.inputs import evaluation_input
from readiness.scoring.models import DriftReference, DriftResult
from readiness.scoring.services import scorecard_compute, scorecard_refresh
from readiness.scoring.tasks import compute_drift
from readiness.telemetry.models import MetricPoint
from tests.conftest import Cast
from tests.factories import ProjectFactory
from tests.scoring.drift.conftest import (
    NOW,
    REFERENCE_END,
    drift_criterion,
    latest_result,
    normal,
    store_current,
    store_points,
    store_reference,
)

pytestmark = pytest.mark.usefixtures("frozen")


def psi_by_histogram(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI on the reference's deciles with np.percentile + np.histogram over (-inf, edges…, +inf)."""
    inner = np.percentile(reference, np.arange(10, 100, 10))
    edges = np.concatenate(([-np.inf], inner, [np.inf]))
    expected = np.histogram(reference, bins=edges)[0] / len(reference)
    actual = np.histogram(current, bins=edges)[0] / len(current)
    expected[expected == 0] = 1e-4
    actual[actual == 0] = 1e-4
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks_by_scipy(reference: np.ndarray, current: np.ndarray) -> float:
    return float(stats.ks_2samp(reference, current).pvalue)


INDEPENDENT: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "psi": psi_by_histogram,
    "ks": ks_by_scipy,
}


@pytest.mark.parametrize("method", ["psi", "ks"])
@pytest.mark.parametrize(
    ("current_mean", "status"),
    [(0.0, "pass"), (1.0, "fail")],
    ids=["same distribution passes", "mean shifted by one sd fails"],
)
def test_job_statistic_matches_numpy_and_scipy_on_the_stored_samples(
    cast: Cast, method: str, current_mean: float, status: str
) -> None:
    criterion = drift_criterion(cast.project, method=method)
    reference, current = normal(1, 2000), normal(2, 1500, mean=current_mean)
    store_reference(cast.project, reference)
    store_current(cast.project, current)

    assert drift_results_compute().computed == 1

    result = DriftResult.objects.get(criterion=criterion)
    assert result.value == pytest.approx(INDEPENDENT[method](reference, current), rel=1e-9)
    assert (result.status, result.reference_count, result.current_count) == (status, 2000, 1500)
    assert result.computed_at == NOW and result.reason == ""


def test_psi_and_ks_on_a_shifted_mean_are_past_their_default_lines(cast: Cast) -> None:
    psi_criterion = drift_criterion(cast.project, key="psi_drift", method="psi")
    ks_criterion = drift_criterion(cast.project, key="ks_drift", method="ks")
    store_reference(cast.project, normal(3, 3000))
    store_current(cast.project, normal(4, 3000, mean=0.5))
    drift_results_compute()
    assert DriftResult.objects.get(criterion=psi_criterion).value >= 0.2  # PSI fails at >= 0.2
    assert DriftResult.objects.get(criterion=ks_criterion).value < 0.05  # KS fails below p = 0.05


def test_psi_between_warn_and_fail_lines_warns(cast: Cast) -> None:
    criterion = drift_criterion(cast.project)
    reference, current = normal(5, 4000), normal(6, 4000, mean=0.4)
    store_reference(cast.project, reference)
    store_current(cast.project, current)
    value = psi_by_histogram(reference, current)
    assert 0.1 <= value < 0.2, "the samples must land in the warn band for this test to mean anything"
    drift_results_compute()
    assert DriftResult.objects.get(criterion=criterion).status == "warn"


@pytest.mark.parametrize("method", ["psi", "ks"])
def test_job_stores_the_reference_and_current_bin_distribution(cast: Cast, method: str) -> None:
    criterion = drift_criterion(cast.project, method=method)
    reference, current = normal(7, 1000), normal(8, 800, mean=0.3)
    store_reference(cast.project, reference)
    store_current(cast.project, current)
    drift_results_compute()
    bins = DriftResult.objects.get(criterion=criterion).bins
    inner = np.percentile(reference, np.arange(10, 100, 10))
    edges = np.concatenate(([-np.inf], inner, [np.inf]))
    assert bins["edges"] == pytest.approx(inner.tolist())
    assert bins["reference"] == pytest.approx((np.histogram(reference, edges)[0] / 1000).tolist())
    assert bins["current"] == pytest.approx((np.histogram(current, edges)[0] / 800).tolist())


@pytest.mark.parametrize(
    ("reference_size", "current_size"), [(9, 500), (500, 9), (0, 0)], ids=["reference", "current", "both"]
)
def test_too_few_samples_on_either_side_is_missing_with_the_reason(
    cast: Cast, reference_size: int, current_size: int
) -> None:
    criterion = drift_criterion(cast.project)
    if reference_size:
        store_reference(cast.project, normal(9, reference_size))
    if current_size:
        store_current(cast.project, normal(10, current_size))
    drift_results_compute()

    result = DriftResult.objects.get(criterion=criterion)
    reason = (
        f"drift of prediction_score needs 10 samples on each side; reference has {reference_size}, "
        f"current window has {current_size}"
    )
    assert (result.status, result.value, result.reason) == ("missing", None, reason)
    scorecard_refresh(project=cast.project)
    shown = latest_result(cast.project, "score_drift")
    assert (shown["status"], shown["reason"]) == ("missing", reason)


def test_min_samples_above_ten_raises_the_bar(cast: Cast) -> None:
    criterion = drift_criterion(cast.project, min_samples=600)
    store_reference(cast.project, normal(11, 1000))
    store_current(cast.project, normal(12, 500))
    drift_results_compute()
    result = DriftResult.objects.get(criterion=criterion)
    assert result.status == "missing" and "needs 600 samples" in result.reason


def test_labels_filter_both_sides(cast: Cast) -> None:
    criterion = drift_criterion(cast.project, labels={"model_version": "7"})
    store_reference(cast.project, normal(13, 400), labels={"model_version": "7"})
    store_reference(cast.project, normal(14, 400, mean=5.0), labels={"model_version": "6"})
    store_current(cast.project, normal(15, 300), labels={"model_version": "7"})
    drift_results_compute()
    result = DriftResult.objects.get(criterion=criterion)
    assert (result.reference_count, result.current_count, result.status) == (400, 300, "pass")


# --- Evaluation reads the stored result ------------------------------------------------------------


def test_evaluation_reads_the_newest_stored_result_without_computing(cast: Cast) -> None:
    drift_criterion(cast.project)
    store_reference(cast.project, normal(16, 500))
    store_current(cast.project, normal(17, 500, mean=1.0))
    drift_results_compute()
    stored = DriftResult.objects.get()

    result = next(c for c in scorecard_compute(project=cast.project).criteria if c.key == "score_drift")

    assert (result.status, result.value, result.as_of) == ("fail", stored.value, NOW)
    assert DriftResult.objects.count() == 1


def test_a_criterion_never_computed_is_computed_once_inline(cast: Cast) -> None:
    criterion = drift_criterion(cast.project)
    store_reference(cast.project, normal(18, 500))
    store_current(cast.project, normal(19, 500))
    scorecard_refresh(project=cast.project)
    assert latest_result(cast.project, "score_drift")["status"] == "pass"
    scorecard_compute(project=cast.project)
    assert DriftResult.objects.filter(criterion=criterion).count() == 1


def test_evaluation_inputs_read_stored_results_and_never_store_one(cast: Cast) -> None:
    drift_criterion(cast.project)
    store_reference(cast.project, normal(40, 500))
    store_current(cast.project, normal(41, 500))

    unread = evaluation_input(project=cast.project, target=None, now=NOW).measurements["score_drift"]

    assert (unread.value, unread.reason) == (
        None,
        "no drift result of prediction_score computed in the last 1 h",
    )
    assert not DriftResult.objects.exists()
    (stored,) = drift_results_ensure(project=cast.project, now=NOW)
    assert drift_results_ensure(project=cast.project, now=NOW) == []  # one usable result is enough
    read = evaluation_input(project=cast.project, target=None, now=NOW).measurements["score_drift"]
    assert (read.value, read.as_of) == (DriftResult.objects.get().value, NOW) and stored.value == read.value


def test_a_result_computed_for_an_older_definition_is_not_read(cast: Cast) -> None:
    criterion = drift_criterion(cast.project)
    store_reference(cast.project, normal(20, 500))
    store_current(cast.project, normal(21, 500))
    drift_results_compute()
    # The window shrinks to the last hour: the stored result (over 24h) no longer measures it.
    criterion.window = "1h"
    criterion.save()
    last_hour = MetricPoint.objects.filter(ts__gt=NOW - dt.timedelta(hours=1), ts__lte=NOW).count()

    scorecard_compute(project=cast.project)

    newest = DriftResult.objects.filter(criterion=criterion).order_by("-id").first()
    assert DriftResult.objects.filter(criterion=criterion).count() == 2
    assert newest.current_count == last_hour < 500


def test_a_result_older_than_the_max_age_is_recomputed(cast: Cast, frozen: time_machine.Coordinates) -> None:
    criterion = drift_criterion(cast.project, window="30d")
    store_reference(cast.project, normal(23, 500))
    store_current(cast.project, normal(24, 500))
    drift_results_compute()
    frozen.shift(DRIFT_RESULT_MAX_AGE - dt.timedelta(seconds=1))
    scorecard_compute(project=cast.project)
    assert DriftResult.objects.filter(criterion=criterion).count() == 1
    frozen.shift(dt.timedelta(seconds=1))
    scorecard_compute(project=cast.project)
    assert DriftResult.objects.filter(criterion=criterion).count() == 2


# --- Re-evaluation on a change ----------------------------------------------------------------------


def test_job_reevaluates_only_projects_whose_drift_status_changed(
    cast: Cast,
    frozen: time_machine.Coordinates,
    eager_celery: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    steady = ProjectFactory(slug="steady")
    drift_criterion(cast.project)
    drift_criterion(steady)
    for project in (cast.project, steady):
        store_reference(project, normal(25, 1000))
        store_current(project, normal(26, 1000))
    with django_capture_on_commit_callbacks(execute=True):
        first = drift_results_compute()
    assert first.reevaluated == sorted([cast.project.pk, steady.pk])  # no result before: a change
    assert latest_result(cast.project, "score_drift")["status"] == "pass"

    frozen.shift(dt.timedelta(hours=12))
    store_points(cast.project, normal(27, 3000, mean=2.0), start=NOW, end=NOW + dt.timedelta(hours=12))
    with django_capture_on_commit_callbacks(execute=True):
        second = drift_results_compute()

    assert second.reevaluated == [cast.project.pk]
    assert latest_result(cast.project, "score_drift")["status"] == "fail"
    assert latest_result(steady, "score_drift")["status"] == "pass"
    with django_capture_on_commit_callbacks(execute=True):
        assert compute_drift.delay().get() == 2  # the beat task itself, run in-process
    assert drift_results_compute().reevaluated == []  # nothing changed since


def test_job_skips_retired_projects(cast: Cast) -> None:
    retired = ProjectFactory(slug="retired", stage="retired")
    drift_criterion(retired)
    drift_criterion(cast.project)
    assert drift_results_compute().computed == 1
    assert not DriftResult.objects.filter(criterion__project=retired).exists()


def test_a_window_the_engine_cannot_read_is_missing_and_the_others_still_compute(cast: Cast) -> None:
    broken = drift_criterion(cast.project, key="broken")
    drift_criterion(cast.project, key="fine")
    type(broken).objects.filter(pk=broken.pk).update(window="soon")  # the column itself accepts any text
    drift_results_compute()
    assert "window must be a whole number" in DriftResult.objects.get(criterion__key="broken").reason
    assert DriftResult.objects.get(criterion__key="fine").status == "missing"


def test_results_older_than_the_retention_are_pruned(cast: Cast, frozen: time_machine.Coordinates) -> None:
    drift_criterion(cast.project)
    drift_results_compute()
    frozen.shift(DRIFT_RESULT_RETENTION)
    assert drift_results_compute().pruned == 0  # exactly at the edge it is kept
    frozen.shift(dt.timedelta(seconds=1))
    assert drift_results_compute().pruned == 1
    assert DriftResult.objects.count() == 2


# --- Reference cache ---------------------------------------------------------------------------------


def reference_of(criterion: Any) -> DriftReference:
    return DriftReference.objects.get(criterion=criterion)


def test_reference_profile_is_computed_once_and_reused(cast: Cast, frozen: time_machine.Coordinates) -> None:
    criterion = drift_criterion(cast.project)
    store_reference(cast.project, normal(28, 700))
    store_current(cast.project, normal(29, 700))
    drift_results_compute()
    cached = reference_of(criterion)
    assert (cached.count, cached.computed_at) == (700, NOW)
    assert np.array_equal(cached.profile().sorted_sample, np.sort(reference_values(cast.project)))

    frozen.shift(dt.timedelta(minutes=10))
    drift_results_compute()
    assert reference_of(criterion).computed_at == NOW
    first, second = DriftResult.objects.order_by("computed_at")
    assert second.value == pytest.approx(first.value)


def reference_values(project: Any) -> np.ndarray:
    rows = MetricPoint.objects.filter(project=project, ts__lte=REFERENCE_END).values_list("value", flat=True)
    return np.fromiter(rows, dtype=float)


def test_reading_the_cached_reference_takes_a_bounded_number_of_queries(
    cast: Cast, django_assert_max_num_queries: Any
) -> None:
    for index in range(5):
        drift_criterion(cast.project, key=f"drift_{index}")
    store_reference(cast.project, normal(30, 300))
    store_current(cast.project, normal(31, 300))
    drift_results_compute()
    # Per criterion: its cached profile, a count proving it current, the current window's values.
    with django_assert_max_num_queries(5 * 3 + 6):
        drift_results_compute()


CHANGES: dict[str, dict[str, Any]] = {
    "reference_end": {"reference_end": REFERENCE_END - dt.timedelta(days=15)},
    "reference_start": {"reference_start": REFERENCE_END - dt.timedelta(days=10)},
    "metric": {"metric": "other_score"},
    "labels": {"labels": {"model_version": "7"}},
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_reference_cache_is_rebuilt_when_its_definition_changes(
    cast: Cast, frozen: time_machine.Coordinates, change: str
) -> None:
    criterion = drift_criterion(cast.project)
    store_reference(cast.project, normal(32, 600))  # evenly spread over the 30-day reference period
    store_reference(cast.project, normal(33, 200), metric="other_score")
    store_reference(cast.project, normal(34, 100), labels={"model_version": "7"})
    drift_results_compute()
    assert reference_of(criterion).count == 700

    for name, value in CHANGES[change].items():
        setattr(criterion, name, value)
    criterion.save()
    frozen.shift(dt.timedelta(minutes=10))
    drift_results_compute()

    rebuilt = reference_of(criterion)
    expected = {"reference_end": 350, "reference_start": 233, "metric": 200, "labels": 100}[change]
    assert rebuilt.computed_at == NOW + dt.timedelta(minutes=10)
    assert rebuilt.count == pytest.approx(expected, abs=1)
    assert DriftResult.objects.order_by("-computed_at").first().reference_count == rebuilt.count


def test_reference_data_backfilled_later_rebuilds_the_cache(
    cast: Cast, frozen: time_machine.Coordinates
) -> None:
    criterion = drift_criterion(cast.project)
    store_current(cast.project, normal(35, 500))
    drift_results_compute()
    assert DriftResult.objects.get().status == "missing" and reference_of(criterion).count == 0

    store_reference(cast.project, normal(36, 500))  # pushed afterwards with old timestamps
    frozen.shift(dt.timedelta(minutes=10))
    drift_results_compute()
    assert reference_of(criterion).count == 500
    assert DriftResult.objects.order_by("-computed_at").first().status == "pass"


def test_a_reference_period_still_running_is_not_cached(cast: Cast) -> None:
    criterion = drift_criterion(
        cast.project, reference_start=NOW - dt.timedelta(days=2), reference_end=NOW + dt.timedelta(days=1)
    )
    store_points(cast.project, normal(37, 300), start=NOW - dt.timedelta(days=2), end=NOW)
    drift_results_compute()
    assert DriftResult.objects.get(criterion=criterion).reference_count == 300
    assert not DriftReference.objects.filter(criterion=criterion).exists()
