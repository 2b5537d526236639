"""Pulling an MLflow source end to end against a real ``mlflow server``: the champion's metrics are
stored once per version with ``model_version``, and the scorecard's ``latest`` follows the alias."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from readiness.scoring.services import scorecard_refresh
from readiness.telemetry.models import MetricPoint, MetricSource
from readiness.telemetry.pulls import source_read, source_run
from tests.factories import MetricCriterionFactory, ProjectFactory
from tests.pull_servers import MlflowRegistry, MlflowServer

pytestmark = pytest.mark.django_db


def trained_version(registry: MlflowRegistry, model: str, *, accuracy: float, auc: float, at_ms: int) -> str:
    """What a training pipeline does: a run logging its metrics, registered as a new version."""
    run = registry.create_run()
    registry.log_metric(run, "accuracy", accuracy - 0.05, timestamp_ms=at_ms - 60_000, step=0)
    registry.log_metric(run, "accuracy", accuracy, timestamp_ms=at_ms, step=1)
    registry.log_metric(run, "val_auc", auc, timestamp_ms=at_ms, step=1)
    return registry.create_model_version(model, run)


def quality_in_scorecard(project: object) -> tuple[str, float | None, list[str]]:
    scorecard = scorecard_refresh(project=project)
    [result] = [c for c in scorecard.payload["criteria"] if c["key"] == "model_quality"]
    return result["status"], result["value"], result["sources"]


def test_the_champion_is_stored_once_per_version_and_latest_follows_the_alias(
    mlflow_server: MlflowServer, mlflow_registry: MlflowRegistry
) -> None:
    model = mlflow_registry.create_registered_model()
    now_ms = int(time.time() * 1000)
    first = trained_version(mlflow_registry, model, accuracy=0.91, auc=0.95, at_ms=now_ms - 120_000)
    mlflow_registry.set_alias(model, "champion", first)
    project = ProjectFactory()
    MetricCriterionFactory(
        project=project,
        key="model_quality",
        dimension="data_science",
        metric="accuracy",
        aggregation="latest",
        window="24h",
        op=">=",
        threshold=0.93,
    )
    source = MetricSource.objects.create(
        project=project,
        name="registry",
        kind="mlflow",
        url=mlflow_server.url,
        interval=300,
        model=model,
        alias="champion",
        metrics={"accuracy": "accuracy", "auc": "val_auc"},
    )

    result, count = source_run(source=source)
    _, again = source_run(source=source)

    assert result.errors == [] and (count, again) == (2, 0)
    points = MetricPoint.objects.filter(project=project, source="mlflow:registry").order_by("metric")
    assert [(p.metric, p.value, p.labels) for p in points] == [
        ("accuracy", 0.91, {"model_version": first}),
        ("auc", 0.95, {"model_version": first}),
    ]
    # At the metric's own timestamp (its latest step), not when it was read.
    assert {int(p.ts.timestamp() * 1000) for p in points} == {now_ms - 120_000}
    assert quality_in_scorecard(project) == ("fail", 0.91, ["mlflow:registry"])

    second = trained_version(mlflow_registry, model, accuracy=0.94, auc=0.97, at_ms=now_ms - 30_000)
    mlflow_registry.set_alias(model, "champion", second)
    result, count = source_run(source=source)

    assert result.errors == [] and count == 2
    newest = MetricPoint.objects.filter(project=project, metric="accuracy").order_by("-ts").first()
    assert (newest.value, newest.labels) == (0.94, {"model_version": second})
    assert quality_in_scorecard(project) == ("pass", 0.94, ["mlflow:registry"])
    source.refresh_from_db()
    assert source.points_stored == 4 and source.last_error == ""


def test_a_fixed_version_is_read_and_an_unknown_alias_is_a_clear_error(
    mlflow_server: MlflowServer, mlflow_registry: MlflowRegistry
) -> None:
    model = mlflow_registry.create_registered_model()
    version = trained_version(mlflow_registry, model, accuracy=0.8, auc=0.9, at_ms=int(time.time() * 1000))
    fixed = MetricSource.objects.create(
        project=ProjectFactory(),
        name="fixed",
        kind="mlflow",
        url=mlflow_server.url,
        model=model,
        version=version,
        metrics={"accuracy": "accuracy", "recall": "recall"},
    )
    read = source_read(fixed, now=timezone.now())
    assert [(p.metric, p.value) for p in read.points] == [("accuracy", 0.8)]
    assert read.notes == [f"recall: not logged in the run of version {version}"] and read.errors == []

    missing = MetricSource.objects.create(
        project=fixed.project,
        name="missing",
        kind="mlflow",
        url=mlflow_server.url,
        model=model,
        alias="champion",
        metrics={"accuracy": "accuracy"},
    )
    _, count = source_run(source=missing)
    missing.refresh_from_db()
    assert count == 0
    assert missing.last_error == f"alias champion not found for model {model}"
    assert missing.failing_since is not None
