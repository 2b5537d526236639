"""On PostgreSQL the raw points table is partitioned by day (readiness/telemetry/partitions.py): points
land in their day's partition, and the retention job drops whole days past raw retention."""

from __future__ import annotations

import json
from datetime import date, timedelta

import psycopg
import pytest
from celery import current_app
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from readiness.projects.models import Project
from readiness.telemetry import partitions
from readiness.telemetry.models import MetricPoint
from readiness.telemetry.partitions import DEFAULT_PARTITION, partition_name
from readiness.telemetry.retention import retention_apply
from readiness.telemetry.services import DIRECT_MAX_POINTS, batch_ingest, batches_apply
from readiness.telemetry.tasks import seal_partitions
from tests.factories import MetricPointFactory
from tests.telemetry.retention.conftest import NOW

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("frozen"),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only"),
]

TODAY = NOW.date()


def partition_of(point: MetricPoint) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM telemetry_metricpoint WHERE id = %s", [point.pk])
        return cursor.fetchone()[0]


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def test_points_land_in_their_days_partition_through_the_orm_and_copy(project: Project) -> None:
    partitions.partitions_ahead(now=NOW)
    yesterday = NOW - timedelta(days=1)
    partitions.partitions_ensure(start=yesterday.date(), end=yesterday.date())
    stored = MetricPointFactory(project=project, ts=NOW)
    # One point more than the request writes itself: the batch takes the worker's COPY path.
    day = yesterday.isoformat()
    points = [{"metric": "copied", "value": i, "ts": day} for i in range(DIRECT_MAX_POINTS + 1)]
    body = json.dumps({"points": points}).encode()
    batch_ingest(project_id=project.pk, body=body, source="push:ci", now=NOW)
    assert batches_apply() == DIRECT_MAX_POINTS + 1
    copied = MetricPoint.objects.filter(metric="copied").first()
    assert {partition_of(p) for p in MetricPoint.objects.filter(metric="copied")} == {
        partition_name(yesterday.date())
    }
    assert partition_of(stored) == partition_name(TODAY)
    assert partition_of(copied) == partition_name(yesterday.date())
    # The model's primary key still finds a point, as every query by id does.
    assert MetricPoint.objects.get(pk=copied.pk).ts == yesterday


def test_a_point_outside_every_partition_waits_in_default_and_moves_when_its_day_is_made(
    project: Project,
) -> None:
    far = NOW + timedelta(days=30)
    point = MetricPointFactory(project=project, ts=far)
    assert partition_of(point) == DEFAULT_PARTITION
    assert partitions.partitions_ensure(start=far.date(), end=far.date()) == [partition_name(far.date())]
    assert partition_of(point) == partition_name(far.date())
    assert MetricPoint.objects.filter(pk=point.pk).count() == 1


def test_ids_keep_increasing_so_latest_ties_go_to_the_last_received(project: Project) -> None:
    partitions.partitions_ahead(now=NOW)
    first, second = (MetricPointFactory(project=project, ts=NOW) for _ in range(2))
    assert second.pk > first.pk


def test_job_drops_days_past_raw_retention_and_keeps_younger_ones(project: Project, settings: object) -> None:
    settings.READINESS_RAW_RETENTION_DAYS = 35
    cutoff = NOW - timedelta(days=35)
    partitions.partitions_ensure(start=TODAY - timedelta(days=40), end=TODAY)
    # 40..36 days ago lie wholly before the cutoff; 35 days ago holds the cutoff (noon) itself.
    old = MetricPointFactory(project=project, ts=cutoff - timedelta(days=1))
    straddling = MetricPointFactory(project=project, ts=cutoff + timedelta(hours=1))
    young = MetricPointFactory(project=project, ts=NOW - timedelta(days=1))

    result = retention_apply(now=NOW)

    expired = days(TODAY - timedelta(days=40), cutoff.date() - timedelta(days=1))
    assert {partition_name(day) for day in expired} <= set(result.partitions_dropped)
    remaining = partitions.partition_days()
    assert min(remaining) == cutoff.date()
    assert set(days(cutoff.date(), TODAY + timedelta(days=partitions.AHEAD_DAYS))) <= set(remaining)
    assert set(MetricPoint.objects.values_list("pk", flat=True)) == {straddling.pk, young.pk}
    assert not MetricPoint.objects.filter(pk=old.pk).exists()


def test_default_partition_points_past_retention_are_deleted(project: Project, settings: object) -> None:
    settings.READINESS_RAW_RETENTION_DAYS = 35
    # No partition covers these days: both wait in DEFAULT (a backfill older than the partitions).
    gone = MetricPointFactory(project=project, ts=NOW - timedelta(days=200))
    kept = MetricPointFactory(project=project, ts=NOW - timedelta(days=35) + timedelta(minutes=1))
    assert partition_of(gone) == partition_of(kept) == DEFAULT_PARTITION

    result = retention_apply(now=NOW)

    assert result.points_deleted == 1
    assert list(MetricPoint.objects.values_list("pk", flat=True)) == [kept.pk]


def test_a_second_run_drops_nothing_more(project: Project) -> None:
    partitions.partitions_ensure(start=TODAY - timedelta(days=60), end=TODAY)
    MetricPointFactory(project=project, ts=NOW - timedelta(days=50))
    MetricPointFactory(project=project, ts=NOW - timedelta(days=300))
    first = retention_apply(now=NOW)
    days_after_first = partitions.partition_days()

    second = retention_apply(now=NOW)

    assert first.partitions_dropped and first.points_deleted == 1 and first.partitions_created
    assert (second.partitions_dropped, second.points_deleted, second.partitions_created) == ({}, 0, [])
    assert partitions.partition_days() == days_after_first


def test_dry_run_says_what_it_would_drop_and_drops_nothing(project: Project) -> None:
    partitions.partitions_ensure(start=TODAY - timedelta(days=40), end=TODAY)
    MetricPointFactory(project=project, ts=NOW - timedelta(days=38))
    MetricPointFactory(project=project, ts=NOW - timedelta(days=300))
    before = partitions.partition_days()

    result = retention_apply(now=NOW, dry_run=True)

    assert partition_name(TODAY - timedelta(days=38)) in result.partitions_dropped
    assert result.points_deleted == 1
    assert partitions.partition_days() == before
    assert MetricPoint.objects.count() == 2
    assert "would drop" in result.summary()


def value_index_catalog() -> list[tuple[str, str, bool, str | None]]:
    """Every value index, whole or a segment: its name, its table, whether it is valid, and its
    predicate as PostgreSQL stored it (None for a whole one)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT index_class.relname, table_class.relname, index.indisvalid, "
            "pg_get_expr(index.indpred, index.indrelid) FROM pg_index index "
            "JOIN pg_class table_class ON table_class.oid = index.indrelid "
            "JOIN pg_class index_class ON index_class.oid = index.indexrelid "
            "WHERE index_class.relname ~ '_value(_[0-9]{4})?$'"
        )
        return cursor.fetchall()


def value_indexed() -> dict[str, bool]:
    """Each partition holding a whole value index, and whether that index is valid."""
    return {table: valid for name, table, valid, _ in value_index_catalog() if name == f"{table}_value"}


def segments() -> dict[str, str]:
    """Each segment's value index, and its predicate."""
    return {name: predicate for name, _, _, predicate in value_index_catalog() if predicate}


def test_the_job_builds_the_value_index_on_sealed_partitions_only(project: Project) -> None:
    """Days that are over and DEFAULT get the selection's whole value index, today's hours that are
    over a partial one per segment; the rest of today, where pushes land, and the week ahead none. A
    second run builds nothing."""
    partitions.partitions_ensure(start=TODAY - timedelta(days=3), end=TODAY)
    MetricPointFactory(project=project, ts=NOW - timedelta(days=2))

    first = retention_apply(now=NOW)
    second = retention_apply(now=NOW)

    days_over = {partition_name(TODAY - timedelta(days=n)) for n in (1, 2, 3)}
    today = partition_name(TODAY)
    # NOW is noon: the segments from midnight to 06:00 and from 06:00 to noon are over.
    assert set(first.partitions_indexed) == days_over | {f"{today} 00:00-06:00", f"{today} 06:00-12:00"}
    assert "value index built on" in first.summary()
    # DEFAULT's was built by migrate (migration 0013), as every sealed partition's is from then on.
    assert value_indexed() == dict.fromkeys(days_over | {DEFAULT_PARTITION}, True)
    assert segments() == {
        f"{today}_value_0006": "((ts >= '2031-03-15 00:00:00+00'::timestamp with time zone) "
        "AND (ts < '2031-03-15 06:00:00+00'::timestamp with time zone))",
        f"{today}_value_0612": "((ts >= '2031-03-15 06:00:00+00'::timestamp with time zone) "
        "AND (ts < '2031-03-15 12:00:00+00'::timestamp with time zone))",
    }
    assert second.partitions_indexed == []


def test_the_segments_of_a_day_go_once_its_whole_index_is_built(project: Project) -> None:
    partitions.partitions_ensure(start=TODAY - timedelta(days=1), end=TODAY + timedelta(days=1))
    partitions.partitions_value_indexed(now=NOW)
    window = {"start": NOW - timedelta(days=1, hours=12), "end": NOW}
    midnight = partitions.day_start(TODAY)
    assert partitions.value_indexed_spans(**window) == [
        (midnight - timedelta(days=1), midnight),
        (midnight, midnight + timedelta(hours=6)),
        (midnight + timedelta(hours=6), midnight + timedelta(hours=12)),
    ]

    tomorrow = midnight + timedelta(days=1, minutes=5)
    assert partitions.partitions_value_indexed(now=tomorrow) == [partition_name(TODAY)]

    assert segments() == {}
    # Yesterday and today are one run of whole days: one query reads both days' indexes.
    assert partitions.value_indexed_spans(start=window["start"], end=tomorrow) == [
        (midnight - timedelta(days=1), midnight + timedelta(days=1))
    ]


def test_a_day_without_a_partition_is_read_through_defaults_index(project: Project) -> None:
    """Days older than the partitions keep their points in DEFAULT, whose value index holds them."""
    partitions.partitions_ensure(start=TODAY, end=TODAY)
    partitions.partitions_value_indexed(now=NOW)
    midnight = partitions.day_start(TODAY)
    assert partitions.value_indexed_spans(start=NOW - timedelta(days=200), end=NOW) == [
        (midnight - timedelta(days=200), midnight),
        (midnight, midnight + timedelta(hours=6)),
        (midnight + timedelta(hours=6), midnight + timedelta(hours=12)),
    ]


def test_a_process_plans_selections_from_its_catalog_read_for_a_minute(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The re-evaluation cycle makes two selections a project: one catalog read a minute serves them
    all. Sealing in this process forgets the read at once (the test above)."""
    partitions.partitions_ensure(start=TODAY - timedelta(days=1), end=TODAY)
    partitions.partitions_value_indexed(now=NOW)
    window = {"start": NOW - timedelta(days=1), "end": NOW}
    with CaptureQueriesContext(connection) as reads:
        spans = partitions.value_indexed_spans(**window)
        assert partitions.value_indexed_spans(**window) == spans
    assert len(reads) == 1

    read_at, valid = partitions._spans_catalog
    monkeypatch.setattr(partitions, "_spans_catalog", (read_at - partitions.SPANS_CATALOG_SECONDS - 1, valid))
    with CaptureQueriesContext(connection) as reads:
        assert partitions.value_indexed_spans(**window) == spans
    assert len(reads) == 1


def test_an_invalid_value_index_left_by_a_build_cut_short_is_built_again(project: Project) -> None:
    yesterday = partition_name(TODAY - timedelta(days=1))
    partitions.partitions_ensure(start=TODAY - timedelta(days=1), end=TODAY)
    partitions.partitions_value_indexed(now=NOW)
    # What a CREATE INDEX CONCURRENTLY interrupted half-way leaves: the index, marked invalid.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass(%s)",
            [f"{yesterday}_value"],
        )
    # An edit of the catalog by hand, which this process hears of only here or after a minute.
    partitions.value_indexes_forget()
    assert value_indexed()[yesterday] is False
    # Until it is built again, a window reads that day in full (not through the invalid index).
    midnight = partitions.day_start(TODAY)
    assert partitions.value_indexed_spans(start=NOW - timedelta(days=1), end=NOW)[0] == (
        midnight,
        midnight + timedelta(hours=6),
    )

    assert partitions.partitions_value_indexed(now=NOW) == [yesterday]
    assert value_indexed()[yesterday] is True


def test_a_run_that_finds_another_one_sealing_builds_nothing(project: Project) -> None:
    """Two runs at once (the hourly job and the daily retention) would each drop the other's index
    under construction as one a crash left invalid: the second finds the first's lock and skips."""
    partitions.partitions_ensure(start=TODAY - timedelta(days=1), end=TODAY)
    other = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [partitions.SEALING_LOCK])
        assert partitions.partitions_value_indexed(now=NOW) == []
        assert partition_name(TODAY - timedelta(days=1)) not in value_indexed()
    finally:
        other.close()

    assert partition_name(TODAY - timedelta(days=1)) in partitions.partitions_value_indexed(now=NOW)


def test_the_hourly_task_is_scheduled_and_seals(project: Project) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["seal-partitions"]
    assert entry["task"] == seal_partitions.name and entry["task"] in current_app.tasks
    partitions.partitions_ensure(start=TODAY - timedelta(days=1), end=TODAY)
    # The days over (yesterday, and the real week migrate made, long past at NOW) whole; today's two
    # segments before noon.
    sealed = len([day for day in partitions.partition_days() if day < TODAY]) + 2

    assert seal_partitions.apply().get() == sealed

    assert value_indexed()[partition_name(TODAY - timedelta(days=1))] is True
    assert len(segments()) == 2
