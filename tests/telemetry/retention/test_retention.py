"""The daily retention job on any database (PRODUCT.md §9): raw points older than
READINESS_RAW_RETENTION_DAYS go, younger ones stay; SQLite's path is a batched DELETE."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from celery import current_app
from django.conf import settings
from django.core.management import call_command

from readiness.projects.models import Project
from readiness.telemetry import retention
from readiness.telemetry.models import MetricPoint, MetricRollup
from readiness.telemetry.retention import points_delete_before, retention_apply
from readiness.telemetry.tasks import apply_retention
from tests.factories import MetricPointFactory
from tests.telemetry.retention.conftest import NOW

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]


def test_points_past_raw_retention_go_and_younger_ones_stay(project: Project) -> None:
    # Two days either side of the cutoff: whole days, as PostgreSQL drops them, on every database.
    cutoff = NOW - timedelta(days=settings.READINESS_RAW_RETENTION_DAYS)
    old = [MetricPointFactory(project=project, ts=cutoff - timedelta(days=d)) for d in (2, 100)]
    young = [MetricPointFactory(project=project, ts=cutoff + timedelta(days=d)) for d in (2, 30)]

    retention_apply(now=NOW)

    assert set(MetricPoint.objects.values_list("pk", flat=True)) == {p.pk for p in young}
    assert not MetricPoint.objects.filter(pk__in=[p.pk for p in old]).exists()


def test_the_batched_delete_removes_every_old_point_in_small_batches(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "DELETE_BATCH", 3)
    before = NOW - timedelta(days=10)
    for minutes in range(7):
        MetricPointFactory(project=project, ts=before - timedelta(minutes=minutes + 1))
    at_cutoff = MetricPointFactory(project=project, ts=before)

    assert points_delete_before(before=before) == 7
    assert list(MetricPoint.objects.values_list("pk", flat=True)) == [at_cutoff.pk]
    assert points_delete_before(before=before) == 0


def test_the_daily_task_is_scheduled_and_applies_retention(project: Project) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["apply-retention"]
    assert entry["task"] == apply_retention.name and entry["task"] in current_app.tasks
    MetricPointFactory(project=project, ts=NOW - timedelta(days=settings.READINESS_RAW_RETENTION_DAYS + 5))
    MetricPointFactory(project=project, ts=NOW)

    apply_retention.apply().get()

    assert list(MetricPoint.objects.values_list("ts", flat=True)) == [NOW]


def test_dry_run_command_prints_what_it_would_remove_and_removes_nothing(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    MetricPointFactory(project=project, ts=NOW - timedelta(days=settings.READINESS_RAW_RETENTION_DAYS + 5))

    call_command("readiness_retention", "--dry-run")

    out = capsys.readouterr().out
    assert "raw points before 2031-02-08 12:00 UTC" in out and "would" in out
    assert MetricPoint.objects.count() == 1


def rollup(project: Project, start: datetime) -> MetricRollup:
    return MetricRollup.objects.create(
        project=project,
        metric="latency_ms",
        source="push:ci",
        resolution=MetricRollup.Resolution.HOUR,
        start=start,
        count=1,
        sum=1.0,
        min=1.0,
        max=1.0,
        latest_value=1.0,
        latest_ts=start,
        latest_id=1,
        sketch=b"",
    )


def test_rollups_past_rollup_retention_go_in_the_same_run_and_a_dry_run_only_counts_them(
    project: Project,
) -> None:
    cutoff = NOW - timedelta(days=settings.READINESS_ROLLUP_RETENTION_DAYS)
    rollup(project, cutoff - timedelta(hours=1))
    kept = [rollup(project, cutoff), rollup(project, NOW - timedelta(days=40))]

    assert retention_apply(now=NOW, dry_run=True).rollups_deleted == 1
    assert MetricRollup.objects.count() == 3

    result = retention_apply(now=NOW)

    assert result.rollups_deleted == 1 and "deleted 1 rows" in result.summary()
    assert set(MetricRollup.objects.values_list("pk", flat=True)) == {r.pk for r in kept}
