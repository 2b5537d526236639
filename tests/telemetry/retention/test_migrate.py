"""Migrating a PostgreSQL database partitions the raw points table by day, with the week ahead made,
keeping the points already stored (the real clock throughout: migrate ran at the session's start)."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
import time_machine
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from readiness.telemetry import partitions
from readiness.telemetry.partitions import AHEAD_DAYS, DEFAULT_PARTITION, partition_name
from tests.factories import MetricPointFactory, ProjectFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only"),
]


def test_points_table_is_partitioned_with_the_week_ahead_after_migrate() -> None:
    # The week ahead of the day the partitioning migration ran (recorded by Django), not of today: a
    # suite started before midnight UTC reaches this test after it.
    migrated = MigrationRecorder.Migration.objects.get(app="telemetry", name="0008_metricpoint_partitioned")
    today = migrated.applied.astimezone(UTC).date()
    assert partitions.is_partitioned()
    ahead = {today + timedelta(days=n) for n in range(AHEAD_DAYS + 1)}
    assert ahead <= set(partitions.partition_days())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'telemetry_metricpoint'::regclass AND contype = 'p'"
        )
        assert cursor.fetchone()[0] == "PRIMARY KEY (id, ts)"
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [DEFAULT_PARTITION])
        assert cursor.fetchone()[0]
        cursor.execute("SELECT pg_get_serial_sequence('telemetry_metricpoint', 'id')")
        assert cursor.fetchone()[0] == "public.telemetry_metricpoint_id_seq"


@pytest.mark.django_db(transaction=True)
def test_migrating_an_existing_table_keeps_every_point_and_the_id_sequence() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("telemetry", "0007_metricsource")])
    try:
        assert not partitions.is_partitioned()
        project = ProjectFactory()
        now = timezone.now()
        ages = {
            "today": timedelta(0),
            "two days ago": timedelta(days=2),
            "past retention": timedelta(days=90),
        }
        ids = {age: MetricPointFactory(project=project, ts=now - delta).pk for age, delta in ages.items()}
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert partitions.is_partitioned()
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, tableoid::regclass::text FROM telemetry_metricpoint")
        placed = dict(cursor.fetchall())
    assert placed == {
        ids["today"]: partition_name(now.date()),
        ids["two days ago"]: partition_name((now - ages["two days ago"]).date()),
        # Older than raw retention: no partition per day of old history, DEFAULT until the job runs.
        ids["past retention"]: DEFAULT_PARTITION,
    }
    assert MetricPointFactory(project=project).pk > max(ids.values())


@pytest.mark.django_db(transaction=True)
def test_migrating_back_past_0013_drops_the_value_indexes_and_forward_builds_them_again() -> None:
    def value_indexes() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname FROM pg_class WHERE relkind = 'i' AND relname LIKE %s", ["%\\_value%"]
            )
            return {name for (name,) in cursor.fetchall()}

    executor = MigrationExecutor(connection)
    executor.migrate([("telemetry", "0012_metricrollup_project_index_dropped")])
    try:
        assert value_indexes() == set()
    finally:
        # Today at 13:00, wherever the real clock is: two of today's segments are over.
        today = timezone.now().date()
        with time_machine.travel(partitions.day_start(today) + timedelta(hours=13), tick=False):
            executor = MigrationExecutor(connection)
            executor.migrate(executor.loader.graph.leaf_nodes())
    # The days that are over and DEFAULT get theirs again, today's hours that are over theirs; the rest
    # of today and the week ahead none.
    sealed = [partition_name(day) for day in partitions.partition_days() if day < today]
    segments = {f"{partition_name(today)}_value_{hours}" for hours in ("0006", "0612")}
    assert value_indexes() == {f"{name}_value" for name in [*sealed, DEFAULT_PARTITION]} | segments
