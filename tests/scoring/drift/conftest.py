"""Helpers of the drift, schedule and expiry tests: drift criteria with known samples in the database,
a frozen clock, and Celery run in-process (eager) so a periodic tick's whole fan-out happens in the
test, through the same tasks and services as in production."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest
import time_machine

from readiness.celery import app
from readiness.projects.models import Project
from readiness.scoring.models import Criterion, Scorecard
from readiness.telemetry.models import MetricPoint

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
REFERENCE_START = NOW - dt.timedelta(days=60)
REFERENCE_END = NOW - dt.timedelta(days=30)


def normal(seed: int, size: int, mean: float = 0.0, sd: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, sd, size)


def drift_criterion(project: Project, key: str = "score_drift", **fields: Any) -> Criterion:
    defaults: dict[str, Any] = {
        "title": "Scores have not drifted",
        "dimension": "data_science",
        "kind": "drift",
        "severity": "blocker",
        "stage": "pilot",
        "metric": "prediction_score",
        "window": "24h",
        "method": "psi",
        "reference_start": REFERENCE_START,
        "reference_end": REFERENCE_END,
    }
    return Criterion.objects.create(project=project, key=key, **(defaults | fields))


def store_points(
    project: Project,
    values: Sequence[float] | np.ndarray,
    *,
    start: dt.datetime,
    end: dt.datetime,
    metric: str = "prediction_score",
    labels: dict[str, str] | None = None,
    source: str = "push:ci",
) -> None:
    """Spread the values evenly over ``(start, end]``: inside a window with those bounds."""
    values = np.asarray(values, dtype=float)
    step = (end - start) / (len(values) + 1)
    MetricPoint.objects.bulk_create(
        [
            MetricPoint(
                project=project,
                metric=metric,
                ts=start + step * (i + 1),
                value=v,
                labels=labels or {},
                source=source,
            )
            for i, v in enumerate(values.tolist())
        ],
        batch_size=5_000,
    )


def store_reference(project: Project, values: Sequence[float] | np.ndarray, **kwargs: Any) -> None:
    store_points(project, values, start=REFERENCE_START, end=REFERENCE_END, **kwargs)


def store_current(
    project: Project, values: Sequence[float] | np.ndarray, *, now: dt.datetime = NOW, **kwargs: Any
) -> None:
    store_points(project, values, start=now - dt.timedelta(hours=23), end=now, **kwargs)


def latest_result(project: Project, key: str) -> dict[str, Any]:
    """The criterion's entry in the newest stored scorecard."""
    scorecard = Scorecard.objects.filter(project=project).order_by("-computed_at", "-id").first()
    assert scorecard is not None, "no scorecard stored"
    return next(c for c in scorecard.payload["criteria"] if c["key"] == key)


@pytest.fixture
def frozen() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Tasks run in the caller, at once: with frozen time, a tick's evaluations happen at that time."""
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = before
