"""A source's state where people look (the scorecard page, the admin console) and the admin's Test,
which reads a real Prometheus once and stores nothing."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client

from readiness.audit.models import AuditEntry
from readiness.telemetry.models import MetricPoint, MetricSource
from tests.conftest import Cast
from tests.pull_servers import Exporter, PrometheusServer
from tests.telemetry.sources.test_pull_prometheus import wait_until_settled_past

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def a_source(cast: Cast, **fields: Any) -> MetricSource:
    values: dict[str, Any] = {"name": "prod-prometheus", "kind": "prometheus", "url": "http://127.0.0.1:9"}
    values["queries"] = {"up": "up"}
    values.update(fields)
    return MetricSource.objects.create(project=cast.project, **values)


@pytest.mark.parametrize(
    ("state", "line"),
    [
        ({"last_success_at": NOW - timedelta(seconds=40)}, "prod-prometheus: last pulled 40 s ago"),
        ({"last_success_at": NOW - timedelta(minutes=12)}, "prod-prometheus: last pulled 12 min ago"),
        (
            {
                "last_success_at": NOW - timedelta(hours=1),
                "failing_since": datetime(2026, 11, 22, 10, 2, tzinfo=UTC),
                "last_error": "connection refused",
            },
            "prod-prometheus: failing since 10:02: connection refused",
        ),
        ({}, "prod-prometheus: not pulled yet"),
        ({"enabled": False}, "prod-prometheus: disabled"),
    ],
)
def test_status_line_says_when_it_last_pulled_or_since_when_it_fails(
    cast: Cast, state: dict, line: str
) -> None:
    assert a_source(cast, **state).status_line(NOW) == line


def test_scorecard_page_shows_each_source_line(cast: Cast) -> None:
    a_source(cast, last_success_at=NOW - timedelta(seconds=40))
    a_source(
        cast, name="registry", failing_since=NOW - timedelta(minutes=28), last_error="connection refused"
    )

    with time_machine.travel(NOW, tick=False):
        response = logged_in(cast.member).get(f"/projects/{cast.project.slug}/")

    assert response.status_code == 200
    assert response.context["source_lines"] == [
        "prod-prometheus: last pulled 40 s ago",
        "registry: failing since 10:02: connection refused",
    ]
    assert "registry: failing since 10:02: connection refused" in response.content.decode()


def test_only_admins_reach_sources_in_the_console(cast: Cast) -> None:
    source = a_source(cast)
    for user in (cast.engineering, cast.leader, cast.outsider):
        response = logged_in(user).get(f"/admin/telemetry/metricsource/{source.pk}/test/")
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert logged_in(cast.admin).get("/admin/telemetry/metricsource/").status_code == 200


def test_admin_changes_are_validated_and_audited(cast: Cast) -> None:
    client = logged_in(cast.admin)
    form = {
        "project": cast.project.pk,
        "name": "prod-prometheus",
        "kind": "prometheus",
        "url": "http://169.254.169.254/",
        "interval": 20,
        "enabled": "on",
        "auth": "{}",
        "queries": '{"latency_ms": "up"}',
        "model": "",
        "alias": "",
        "version": "",
        "metrics": "{}",
        "next_pull_at_0": "2026-11-22",
        "next_pull_at_1": "10:00:00",
    }

    refused = client.post("/admin/telemetry/metricsource/add/", form)

    assert refused.status_code == 200 and not MetricSource.objects.exists()
    errors = refused.context["adminform"].form.errors
    assert "denied network" in str(errors["url"]) and "at least 30" in str(errors["interval"])

    form.update(url="http://127.0.0.1:9090", interval=60)
    assert client.post("/admin/telemetry/metricsource/add/", form).status_code == 302
    source = MetricSource.objects.get()
    form.update(interval=120)
    assert client.post(f"/admin/telemetry/metricsource/{source.pk}/change/", form).status_code == 302
    entries = AuditEntry.objects.filter(object_type="telemetry.metricsource").order_by("id")
    assert [e.action for e in entries] == ["metric_source.create", "metric_source.update"]
    assert (entries[1].before["interval"], entries[1].after["interval"]) == (60, 120)
    assert entries[1].actor == cast.admin and entries[1].project == cast.project


@pytest.fixture(scope="module")
def exporter() -> Any:
    exporter = Exporter()
    yield exporter
    exporter.close()


@pytest.fixture(scope="module")
def prometheus(exporter: Exporter) -> Any:
    server = PrometheusServer([exporter.target])
    started = time.time()
    server.start()
    server.wait_for_scrapes(2)
    # A pull reads the newest settled timestamp of the 30 s grid: wait for one with scrapes.
    wait_until_settled_past(math.ceil((started + 3) / 30) * 30)
    yield server
    server.destroy()


def test_admin_test_shows_what_would_be_stored_and_stores_nothing(
    cast: Cast, prometheus: PrometheusServer
) -> None:
    source = a_source(cast, url=prometheus.url, interval=30, queries={"up": 'up{job="fraud"}', "bad": "sum("})

    response = logged_in(cast.admin).get(f"/admin/telemetry/metricsource/{source.pk}/test/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "would store 1 point" in page and "up{instance=" in page
    assert "bad: query failed (bad_data)" in page
    assert not MetricPoint.objects.exists()
    source.refresh_from_db()
    assert (source.last_pull_at, source.last_error) == (None, "")
