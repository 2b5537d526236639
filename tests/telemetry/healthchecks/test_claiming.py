"""Probe cycles against the database: claiming due targets exactly once, never stalling one, and
storing results through the push path so availability is mean(health.up)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from readiness.projects.models import Project
from readiness.telemetry.aggregates import window_aggregate
from readiness.telemetry.healthchecks import healthchecks_claim_due, healthchecks_run
from readiness.telemetry.models import HealthCheck, IngestBatch, MetricPoint
from readiness.telemetry.services import batches_apply
from readiness.telemetry.tasks import run_health_checks
from tests.factories import ProjectFactory
from tests.telemetry.healthchecks.conftest import TargetServer

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)


def health_check(
    project: Project, name: str, url: str = "http://127.0.0.1:9/", **fields: object
) -> HealthCheck:
    fields.setdefault("next_probe_at", NOW)
    fields.setdefault("interval", 60)
    fields.setdefault("timeout", 1.0)
    return HealthCheck.objects.create(project=project, name=name, url=url, **fields)


def names(checks: list[HealthCheck]) -> list[str]:
    return sorted(check.name for check in checks)


# --- claiming -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_claim_takes_due_enabled_targets_of_active_projects() -> None:
    project = ProjectFactory()
    retired = ProjectFactory(stage="retired")
    health_check(project, "due")
    health_check(project, "later", next_probe_at=NOW + dt.timedelta(seconds=1))
    health_check(project, "off", enabled=False)
    health_check(retired, "retired")
    assert names(healthchecks_claim_due(now=NOW, limit=10)) == ["due"]


@pytest.mark.django_db
def test_claim_respects_the_limit_oldest_due_first() -> None:
    project = ProjectFactory()
    for n in range(5):
        health_check(project, f"t{n}", next_probe_at=NOW - dt.timedelta(seconds=n))
    assert names(healthchecks_claim_due(now=NOW, limit=2)) == ["t3", "t4"]
    assert names(healthchecks_claim_due(now=NOW, limit=10)) == ["t0", "t1", "t2"]


@pytest.mark.django_db
def test_claimed_target_is_not_claimed_again_in_the_same_interval() -> None:
    health_check(ProjectFactory(), "api")
    assert len(healthchecks_claim_due(now=NOW, limit=10)) == 1
    assert healthchecks_claim_due(now=NOW, limit=10) == []
    assert healthchecks_claim_due(now=NOW + dt.timedelta(seconds=59), limit=10) == []


@pytest.mark.django_db
def test_crashed_cycle_does_not_stall_the_target() -> None:
    # A cycle claims the target and dies before probing: nothing is recorded, and the target is
    # due again one interval after the claim, not never.
    check = health_check(ProjectFactory(), "api", interval=45)
    assert len(healthchecks_claim_due(now=NOW, limit=10)) == 1
    check.refresh_from_db()
    assert check.last_probe_at is None
    assert healthchecks_claim_due(now=NOW + dt.timedelta(seconds=44), limit=10) == []
    assert names(healthchecks_claim_due(now=NOW + dt.timedelta(seconds=45), limit=10)) == ["api"]


@pytest.mark.django_db
def test_late_tick_keeps_the_cadence() -> None:
    # Claimed 7 s late, the next probe is still due one interval after the previous due time.
    check = health_check(ProjectFactory(), "api", interval=30)
    healthchecks_claim_due(now=NOW + dt.timedelta(seconds=7), limit=10)
    check.refresh_from_db()
    assert check.next_probe_at == NOW + dt.timedelta(seconds=30)


@pytest.mark.django_db
def test_after_an_outage_the_next_probe_counts_from_now() -> None:
    check = health_check(ProjectFactory(), "api", interval=30, next_probe_at=NOW - dt.timedelta(hours=2))
    healthchecks_claim_due(now=NOW, limit=10)
    check.refresh_from_db()
    assert check.next_probe_at == NOW + dt.timedelta(seconds=30)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_ticks_claim_each_due_target_once() -> None:
    project = ProjectFactory()
    for n in range(60):
        health_check(project, f"t{n:02}")
    start = threading.Barrier(2)
    claims: list[list[HealthCheck]] = [[], []]
    errors: list[BaseException] = []

    def tick(slot: int) -> None:
        try:
            start.wait()
            claims[slot] = healthchecks_claim_due(now=NOW, limit=100)
        except BaseException as exc:  # surfaced below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=tick, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    first, second = ({check.pk for check in claim} for claim in claims)
    assert first.isdisjoint(second)
    assert len(first | second) == 60


# --- probe cycles -----------------------------------------------------------------------------


def points(project: Project, metric: str) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for point in MetricPoint.objects.filter(project=project, metric=metric).order_by("ts", "id"):
        found.setdefault(point.labels["target"], []).append(point.value)
    return found


@pytest.mark.django_db
def test_cycle_writes_health_points_through_the_push_path(
    target_server: TargetServer, refused_port: int
) -> None:
    now = timezone.now()
    project = ProjectFactory()
    health_check(project, "api", target_server.url("/up"), next_probe_at=now)
    health_check(project, "db", target_server.url("/down"), next_probe_at=now)
    health_check(project, "cache", f"http://127.0.0.1:{refused_port}/", next_probe_at=now)

    report = healthchecks_run(now=now)

    assert (report.probed, report.up, report.down) == (3, 1, 2)
    # One batch per target (a batch has one source), stored durably like a push, then applied.
    batches = IngestBatch.objects.filter(project=project)
    assert sorted(batches.values_list("source", flat=True)) == ["probe:api", "probe:cache", "probe:db"]
    batches_apply()
    assert points(project, "health.up") == {"api": [1.0], "db": [0.0], "cache": [0.0]}
    # Each point says which health check measured it (PRODUCT.md §8 "Provenance").
    sources = MetricPoint.objects.filter(project=project).values_list("labels__target", "source")
    assert {target: source for target, source in sources} == {
        "api": "probe:api",
        "db": "probe:db",
        "cache": "probe:cache",
    }
    latency = points(project, "health.latency_ms")
    assert sorted(latency) == ["api", "db"]  # a refused probe has no latency
    assert all(0 < value < 1000 for values in latency.values() for value in values)
    assert set(MetricPoint.objects.filter(project=project).values_list("ts", flat=True)) == {now}


@pytest.mark.django_db
def test_cycle_records_each_targets_state_and_reason(target_server: TargetServer, refused_port: int) -> None:
    now = timezone.now()
    project = ProjectFactory()
    health_check(project, "api", target_server.url("/up"), next_probe_at=now)
    health_check(project, "db", target_server.url("/down"), next_probe_at=now)
    health_check(project, "cache", f"http://127.0.0.1:{refused_port}/", next_probe_at=now)

    healthchecks_run(now=now)

    state = {c.name: (c.last_up, c.last_reason, c.last_probe_at) for c in HealthCheck.objects.all()}
    assert state == {
        "api": (True, "", now),
        "db": (False, "503, expected 200", now),
        "cache": (False, "connection refused", now),
    }


@pytest.mark.django_db
def test_up_down_change_requests_an_evaluation(target_server: TargetServer) -> None:
    now = timezone.now()
    project = ProjectFactory()
    check = health_check(project, "api", target_server.url("/up"), next_probe_at=now, last_up=True)

    assert healthchecks_run(now=now).changed == 0
    assert not Project.objects.get(pk=project.pk).evaluation_pending

    HealthCheck.objects.filter(pk=check.pk).update(url=target_server.url("/down"))
    assert healthchecks_run(now=now + dt.timedelta(seconds=60)).changed == 1
    assert Project.objects.get(pk=project.pk).evaluation_pending


@pytest.mark.django_db
def test_one_batch_per_target_per_cycle(target_server: TargetServer) -> None:
    now = timezone.now()
    first, second = ProjectFactory(), ProjectFactory()
    for project in (first, second):
        for name in ("a", "b", "c"):
            health_check(project, name, target_server.url("/up"), next_probe_at=now)
    healthchecks_run(now=now)
    for project in (first, second):
        batches = IngestBatch.objects.filter(project=project)
        # up + latency for each target, under the target's own source
        assert sorted(batches.values_list("source", "accepted")) == [
            ("probe:a", 2),
            ("probe:b", 2),
            ("probe:c", 2),
        ]


@pytest.mark.django_db
def test_availability_is_the_mean_of_health_up(target_server: TargetServer) -> None:
    now = timezone.now()
    project = ProjectFactory()
    check = health_check(project, "api", target_server.url("/up"), next_probe_at=now, interval=30)
    for step, path in enumerate(["/up", "/up", "/down", "/up"]):
        HealthCheck.objects.filter(pk=check.pk).update(url=target_server.url(path))
        assert healthchecks_run(now=now + dt.timedelta(seconds=30 * step)).probed == 1
    batches_apply()
    availability = window_aggregate(
        project_id=project.pk,
        metric="health.up",
        aggregation="mean",
        start=now - dt.timedelta(hours=24),
        end=now + dt.timedelta(minutes=2),
        labels={"target": "api"},
    )
    assert availability.value == 0.75
    assert availability.count == 4


@pytest.mark.django_db
def test_nothing_due_writes_nothing() -> None:
    health_check(ProjectFactory(), "api", next_probe_at=timezone.now() + dt.timedelta(seconds=30))
    assert healthchecks_run().probed == 0
    assert not IngestBatch.objects.exists()


@pytest.mark.django_db
def test_task_runs_one_cycle(target_server: TargetServer) -> None:
    health_check(ProjectFactory(), "api", target_server.url("/up"), next_probe_at=timezone.now())
    assert run_health_checks() == 1
    assert HealthCheck.objects.get().last_up is True


def test_beat_runs_the_cycle_more_often_than_the_shortest_interval() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["run-health-checks"]
    assert entry["task"] == "telemetry.run_health_checks"
    assert entry["schedule"] < 30
    assert entry["options"]["expires"] <= entry["schedule"]
