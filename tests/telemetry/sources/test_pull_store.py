"""The store step of a pull, fed a read directly: new points only, each once, the outcome on the source,
and an evaluation asked for the projects that got points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from readiness.projects.models import Project
from readiness.telemetry.models import MetricPoint, MetricSource
from readiness.telemetry.pulls import PulledPoint, PullResult, sources_store
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def a_source() -> MetricSource:
    return MetricSource.objects.create(
        project=ProjectFactory(),
        name="prod",
        kind="prometheus",
        url="http://127.0.0.1:9",
        queries={"x": "up"},
    )


def read(*minutes: int) -> PullResult:
    return PullResult(points=[PulledPoint("x", T0 + timedelta(minutes=m), float(m), {}) for m in minutes])


def test_overlapping_reads_store_each_timestamp_once_and_ask_for_one_evaluation() -> None:
    source = a_source()

    first = sources_store(pulls=[(source, read(0, 1, 2))], now=T0)
    # A read that overlaps what is stored (an overlapping run, a stale claim): only what is newer.
    second = sources_store(pulls=[(source, read(1, 2, 3))], now=T0)

    assert (first, second) == (3, 1)
    assert list(MetricPoint.objects.order_by("ts").values_list("value", flat=True)) == [0.0, 1.0, 2.0, 3.0]
    source.refresh_from_db()
    assert source.points_stored == 4 and source.pulled_until == {"x": (T0 + timedelta(minutes=3)).isoformat()}
    assert Project.objects.get(pk=source.project_id).evaluation_pending


def test_a_failing_read_keeps_the_time_its_failures_began() -> None:
    source = a_source()
    failing = PullResult(errors=["connection refused"])

    sources_store(pulls=[(source, failing)], now=T0)
    sources_store(pulls=[(source, failing)], now=T0 + timedelta(minutes=1))
    source.refresh_from_db()
    assert (source.failing_since, source.last_error, source.last_success_at) == (
        T0,
        "connection refused",
        None,
    )

    sources_store(pulls=[(source, read(5))], now=T0 + timedelta(minutes=2))
    source.refresh_from_db()
    assert (source.failing_since, source.last_error) == (None, "")
    assert source.last_success_at == T0 + timedelta(minutes=2)
    assert not Project.objects.filter(pk=source.project_id, evaluation_pending=False).exists()
