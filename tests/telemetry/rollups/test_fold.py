"""The fold job: closed minutes to minute rows, minute rows to hour rows, idempotent, late points
re-folded, a persistent watermark, and pruning for retention."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.db.models import Sum

from readiness.projects.models import Project
from readiness.telemetry.aggregates import window_aggregate
from readiness.telemetry.models import (
    MetricPoint,
    MetricRollup,
    MetricSource,
    RollupDirtyMinute,
    RollupWatermark,
)
from readiness.telemetry.pulls import PulledPoint, PullResult, sources_store
from readiness.telemetry.rollups import fold
from readiness.telemetry.rollups.fold import GRACE, rollups_fold, rollups_prune
from readiness.telemetry.services import batch_ingest, batches_apply
from tests.factories import ProjectFactory

NOW = dt.datetime(2026, 11, 22, 12, 0, 30, tzinfo=dt.UTC)
START = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    """Writers mark minutes closed before the clock's now, readers trust dirty marks within raw
    retention of it: the clock is NOW in every test."""
    with time_machine.travel(NOW, tick=False):
        yield


def rollup_rows() -> list[tuple[Any, ...]]:
    """Every rollup row's content (not its id), in a fixed order."""
    fields = ["project_id", "metric", "labels", "source", "resolution", "start", "count", "sum", "min"]
    fields += ["max", "latest_value", "latest_ts", "latest_id", "sketch"]
    rows = [
        tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
        for row in MetricRollup.objects.values_list(*fields)
    ]
    return sorted(rows, key=repr)


@pytest.fixture
def series(db: None) -> tuple[int, list[MetricPoint]]:
    """Three hours of one point every 20 s, two sources, two label sets."""
    project = ProjectFactory()
    rng = np.random.default_rng(3)
    points = [
        MetricPoint(
            project=project,
            metric="latency_ms",
            ts=START + dt.timedelta(seconds=20 * i),
            value=float(rng.lognormal(4, 0.5)),
            labels={"region": "eu" if i % 3 else "us"},
            source="push:ci" if i % 2 else "probe:api",
        )
        for i in range(3 * 180)
    ]
    MetricPoint.objects.bulk_create(points)
    return project.pk, points


def test_fold_writes_one_row_per_closed_minute_and_series_and_hour_rows_from_them(
    series: tuple[int, list[MetricPoint]],
) -> None:
    project_id, points = series
    rollups_fold(now=NOW)
    # Folded up to the last minute closed GRACE ago: 11:58, so the whole of 09:00-12:00.
    assert RollupWatermark.objects.get().folded_until == dt.datetime(2026, 11, 22, 11, 58, tzinfo=dt.UTC)
    minute = MetricRollup.objects.get(resolution=60, start=START, source="probe:api", labels={"region": "us"})
    expected = [
        p for p in points if p.ts < START + MINUTE and p.source == "probe:api" and p.labels["region"] == "us"
    ]
    assert minute.count == len(expected)
    assert minute.sum == pytest.approx(sum(p.value for p in expected))
    assert (minute.min, minute.max) == (min(p.value for p in expected), max(p.value for p in expected))
    assert (minute.latest_ts, minute.latest_value) == (expected[-1].ts, expected[-1].value)
    hours = MetricRollup.objects.filter(resolution=3600, project_id=project_id)
    # Hours 09:00 and 10:00 are closed and folded; 11:00 is not over at 11:58.
    assert sorted({h.start.hour for h in hours}) == [9, 10]
    assert sum(h.count for h in hours) == sum(1 for p in points if p.ts.hour in (9, 10))
    folded = MetricRollup.objects.filter(resolution=60).aggregate(n=Sum("count"))["n"]
    assert folded == sum(1 for p in points if p.ts < dt.datetime(2026, 11, 22, 11, 58, tzinfo=dt.UTC))


def test_fold_is_idempotent(series: tuple[int, list[MetricPoint]]) -> None:
    rollups_fold(now=NOW)
    first = rollup_rows()
    assert rollups_fold(now=NOW) == 0  # nothing new to fold
    # Folding everything again from scratch recomputes identical rows.
    RollupWatermark.objects.update(folded_until=START)
    rollups_fold(now=NOW)
    assert rollup_rows() == first


def test_minutes_within_the_grace_are_not_folded(series: tuple[int, list[MetricPoint]]) -> None:
    rollups_fold(now=START + dt.timedelta(minutes=30) + GRACE)
    newest = MetricRollup.objects.order_by("-start").values_list("start", flat=True).first()
    assert newest == START + dt.timedelta(minutes=29)


def test_a_late_point_refolds_its_minute_and_hour(series: tuple[int, list[MetricPoint]]) -> None:
    project_id, points = series
    rollups_fold(now=NOW)
    late_ts = START + dt.timedelta(minutes=5, seconds=7)
    body = orjson.dumps(
        {
            "points": [
                {
                    "metric": "latency_ms",
                    "value": 9999.0,
                    "ts": late_ts.isoformat(),
                    "labels": {"region": "eu"},
                }
            ]
        }
    )
    batch_id, _, _ = batch_ingest(project_id=project_id, body=body, source="push:ci", now=NOW)
    batches_apply(first=batch_id)
    assert list(RollupDirtyMinute.objects.values_list("minute", flat=True)) == [
        START + dt.timedelta(minutes=5)
    ]
    window = {"project_id": project_id, "metric": "latency_ms", "start": START, "end": NOW}
    # Before the next fold the dirty minute is read raw: already exact.
    assert window_aggregate(**window, aggregation="max").value == 9999.0
    in_window = sum(1 for p in points if START < p.ts <= NOW)
    assert window_aggregate(**window, aggregation="count").count == in_window + 1

    rollups_fold(now=NOW + MINUTE)
    assert not RollupDirtyMinute.objects.exists()
    minute = MetricRollup.objects.get(
        resolution=60, start=START + dt.timedelta(minutes=5), source="push:ci", labels={"region": "eu"}
    )
    assert minute.max == 9999.0
    hour = MetricRollup.objects.get(resolution=3600, start=START, source="push:ci", labels={"region": "eu"})
    assert hour.max == 9999.0
    assert window_aggregate(**window, aggregation="max").value == 9999.0


def test_a_point_of_the_open_minute_is_not_marked(db: None) -> None:
    project = ProjectFactory()
    body = orjson.dumps({"points": [{"metric": "accuracy", "value": 0.9, "ts": NOW.isoformat()}]})
    batch_id, _, _ = batch_ingest(project_id=project.pk, body=body, source="push:ci", now=NOW)
    batches_apply(first=batch_id)
    assert not RollupDirtyMinute.objects.exists()


def test_prune_deletes_rollups_before_the_cutoff_only(series: tuple[int, list[MetricPoint]]) -> None:
    rollups_fold(now=NOW)
    cutoff = START + dt.timedelta(hours=1)
    kept = MetricRollup.objects.filter(start__gte=cutoff).count()
    removed = MetricRollup.objects.filter(start__lt=cutoff).count()
    assert rollups_prune(before=cutoff) == removed
    assert MetricRollup.objects.count() == kept
    assert not MetricRollup.objects.filter(start__lt=cutoff).exists()


def test_the_fold_runs_every_minute_with_expiry_and_limits_below_it() -> None:
    from readiness.telemetry.tasks import fold_rollups

    entry = settings.CELERY_BEAT_SCHEDULE["fold-rollups"]
    assert entry["task"] == fold_rollups.name == "telemetry.fold_rollups"
    assert entry["schedule"] == 60.0
    assert entry["options"]["expires"] < 60
    assert fold_rollups.soft_time_limit < fold_rollups.time_limit < 60


def test_a_run_with_its_budget_spent_leaves_the_rest_to_the_next_run(
    series: tuple[int, list[MetricPoint]],
) -> None:
    assert rollups_fold(now=NOW, budget=0) == 0
    assert not MetricRollup.objects.exists()
    assert rollups_fold(now=NOW) > 0
    assert RollupWatermark.objects.get().folded_until == dt.datetime(2026, 11, 22, 11, 58, tzinfo=dt.UTC)


def test_the_task_folds_up_to_its_clock(series: tuple[int, list[MetricPoint]]) -> None:
    from readiness.telemetry.tasks import fold_rollups

    assert fold_rollups() > 0  # the clock is NOW: the same rows as rollups_fold(now=NOW)
    assert RollupWatermark.objects.get().folded_until == dt.datetime(2026, 11, 22, 11, 58, tzinfo=dt.UTC)


def test_a_prometheus_backfill_refolds_the_minutes_it_lands_in(series: tuple[int, list[MetricPoint]]) -> None:
    project_id, _ = series
    rollups_fold(now=NOW)
    source = MetricSource.objects.create(
        project_id=project_id, name="prod", kind="prometheus", url="http://127.0.0.1:9", queries={"x": "up"}
    )
    backfill = [
        PulledPoint("latency_ms", START + dt.timedelta(minutes=m, seconds=1), 5000.0 + m, {}) for m in (7, 8)
    ]
    assert sources_store(pulls=[(source, PullResult(points=backfill))], now=NOW) == 2
    assert sorted(RollupDirtyMinute.objects.values_list("minute", flat=True)) == [
        START + dt.timedelta(minutes=7),
        START + dt.timedelta(minutes=8),
    ]
    rollups_fold(now=NOW)
    pulled = MetricRollup.objects.filter(source="prometheus:prod")
    assert sorted((r.resolution, r.start.minute, r.max) for r in pulled) == [
        (60, 7, 5007.0),
        (60, 8, 5008.0),
        (3600, 0, 5008.0),
    ]


def test_small_chunks_fold_the_same_rows_as_one_large_one(
    series: tuple[int, list[MetricPoint]], monkeypatch: pytest.MonkeyPatch
) -> None:
    rollups_fold(now=NOW)
    whole = rollup_rows()
    MetricRollup.objects.all().delete()
    RollupWatermark.objects.all().delete()
    # A chunk holds up to 200,000 points; with 40 here (3 points a minute) the span halves from 60 to 7
    # minutes, so chunks end mid-hour; their boundaries stay whole minutes, nothing is folded twice or
    # left out, and each hour row is made once its last minute is in.
    monkeypatch.setattr(fold, "CHUNK_POINTS", 40)
    rollups_fold(now=NOW)
    assert rollup_rows() == whole


def refold_every_minute() -> None:
    """Mark every minute holding points dirty and fold: each minute re-folded from its raw points, each
    hour from the stored minute rows (the late-point path), not from the range fold's own rows."""
    minutes = {
        (p.project_id, p.metric, p.ts.replace(second=0, microsecond=0)) for p in MetricPoint.objects.all()
    }
    RollupDirtyMinute.objects.bulk_create(
        RollupDirtyMinute(project_id=p, metric=m, minute=t) for p, m, t in minutes
    )
    rollups_fold(now=NOW)
    assert not RollupDirtyMinute.objects.exists()


def test_a_refold_of_every_minute_writes_the_rows_the_range_fold_wrote(
    series: tuple[int, list[MetricPoint]],
) -> None:
    rollups_fold(now=NOW)
    folded = rollup_rows()
    refold_every_minute()
    assert rollup_rows() == folded


# Free-text labels with what COPY's text format escapes (backslash, tab, newline, carriage return),
# quotes and a non-ASCII letter: they must come back from the rollups exactly as pushed.
AWKWARD_LABELS = {"path": "C:\\tmp\\a\tb\nc\rd", "quote": '"é"'}


@pytest.fixture
def sparse(db: None) -> list[MetricPoint]:
    """A point an hour from 03:17 to 11:17 (as bench/pages.py generates for most projects), and a second
    point in another minute of the 05:00 hour."""
    project = ProjectFactory()
    stamps = [dt.datetime(2026, 11, 22, hour, 17, 5, tzinfo=dt.UTC) for hour in range(3, 12)]
    stamps.append(dt.datetime(2026, 11, 22, 5, 48, 59, tzinfo=dt.UTC))
    points = [
        MetricPoint(
            project=project,
            metric="accuracy",
            ts=ts,
            value=0.9 + k / 100,
            labels=AWKWARD_LABELS,
            source="push:ci",
        )
        for k, ts in enumerate(stamps)
    ]
    return MetricPoint.objects.bulk_create(points)


def test_a_one_point_hour_gets_the_summary_of_its_minute(sparse: list[MetricPoint]) -> None:
    rollups_fold(now=NOW)
    hours = {r.start.hour: r for r in MetricRollup.objects.filter(resolution=3600)}
    minutes = {r.start: r for r in MetricRollup.objects.filter(resolution=60)}
    # Hours 03:00-10:00 are closed by 11:58; 05:00 holds two points.
    assert sorted(hours) == list(range(3, 11))
    for hour, row in hours.items():
        minute = minutes[row.start.replace(minute=17)]
        if hour == 5:
            assert (row.count, row.latest_ts) == (2, dt.datetime(2026, 11, 22, 5, 48, 59, tzinfo=dt.UTC))
            continue
        assert row.count == minute.count == 1
        assert (row.sum, row.min, row.max) == (minute.sum, minute.min, minute.max)
        assert (row.latest_value, row.latest_ts, row.latest_id) == (
            minute.latest_value,
            minute.latest_ts,
            minute.latest_id,
        )
        assert bytes(row.sketch) == bytes(minute.sketch)
    assert all(r.labels == AWKWARD_LABELS for r in MetricRollup.objects.all())


def test_a_refold_of_a_sparse_series_writes_the_rows_the_range_fold_wrote(sparse: list[MetricPoint]) -> None:
    rollups_fold(now=NOW)
    folded = rollup_rows()
    assert len(folded) == 10 + 8  # a minute row a point, an hour row a closed hour
    refold_every_minute()
    assert rollup_rows() == folded
    window = {
        "project_id": sparse[0].project_id,
        "metric": "accuracy",
        "start": START - dt.timedelta(hours=7),
        "end": NOW,
    }
    assert window_aggregate(**window, aggregation="count").count == len(sparse)
    assert window_aggregate(**window, aggregation="max").value == max(p.value for p in sparse)


def test_rollups_have_no_index_on_the_project_alone_and_go_with_their_project(
    series: tuple[int, list[MetricPoint]],
) -> None:
    # Migration 0012: "metricrollup_window" starts with the project, so a project's deletion needs no
    # other index; one fewer to maintain per row the fold writes.
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, MetricRollup._meta.db_table)
    assert [c["columns"] for c in indexes.values() if c["index"] and c["columns"][:1] == ["project_id"]] == [
        ["project_id", "metric", "resolution", "start"]
    ]
    project_id, _ = series
    rollups_fold(now=NOW)
    assert MetricRollup.objects.filter(project_id=project_id).exists()
    Project.objects.get(pk=project_id).delete()
    assert not MetricRollup.objects.exists()
