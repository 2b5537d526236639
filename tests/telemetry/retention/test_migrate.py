"""Migrating a PostgreSQL database partitions the raw points table by day, with the week ahead made
(the real clock: migrate ran at the start of this test session)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from readiness.telemetry import partitions
from readiness.telemetry.partitions import AHEAD_DAYS, DEFAULT_PARTITION

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only"),
]


def test_points_table_is_partitioned_with_the_week_ahead_after_migrate() -> None:
    today = timezone.now().date()
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
