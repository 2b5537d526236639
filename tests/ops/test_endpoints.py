"""``/healthz``, ``/readyz`` and ``/metrics``: what an orchestrator and Prometheus get."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from readiness.observability.metrics import record_notification_failure
from readiness.projects.services import token_create
from readiness.scoring.services import scorecard_refresh
from readiness.telemetry.healthchecks import healthchecks_run
from readiness.telemetry.models import HealthCheck
from readiness.telemetry.services import DIRECT_MAX_POINTS, batches_drain
from tests.conftest import Cast
from tests.ops.conftest import free_port, run_python, sample

METRICS_TOKEN = "prometheus-scrape-token-0123456789"


@pytest.fixture
def metrics_enabled(settings: Any) -> None:
    settings.READINESS_METRICS_TOKEN = METRICS_TOKEN


def scrape(client: Client) -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.content
    return response.content.decode()


def push(client: Client, secret: str, points: list[dict[str, object]]) -> Any:
    return client.post(
        "/api/v1/metrics",
        orjson.dumps({"points": points}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )


# --- /healthz and /readyz ---------------------------------------------------------------------------


def test_healthz_answers_without_touching_the_database(client: Client) -> None:
    # No django_db mark: pytest-django makes any database access in this test an error.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_healthz_answers_a_probe_addressed_by_ip_whatever_the_allowed_hosts(client: Client) -> None:
    # A kubelet probes http://<pod ip>:8000/healthz: that Host is in no ALLOWED_HOSTS.
    response = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200


@pytest.mark.django_db
def test_readyz_is_200_when_database_and_broker_answer(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


READYZ = """
from django.test import Client
response = Client().get("/readyz")
print(response.status_code)
print(response.content.decode())
"""


def test_readyz_is_503_naming_the_broker_when_the_broker_is_down() -> None:
    # This run's own database (PostgreSQL or SQLite) answers; the broker's port has nothing behind it.
    result = run_python(READYZ, CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().splitlines()[-2:]
    assert status == "503"
    assert json.loads(body) == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "unreachable"},
    }


def test_readyz_is_503_naming_both_when_database_and_broker_are_down() -> None:
    dead = free_port()
    result = run_python(
        READYZ,
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{dead}/readiness",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{dead}/0",
    )
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().splitlines()[-2:]
    assert status == "503"
    assert json.loads(body)["checks"] == {"database": "unreachable", "broker": "unreachable"}
    # The reason is logged for the operator, and never sent to the unauthenticated caller.
    assert result.stderr.count("readiness check failed") == 2
    assert str(dead) not in body


# --- /metrics: access -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_is_a_404_when_no_token_is_configured(client: Client, settings: Any) -> None:
    settings.READINESS_METRICS_TOKEN = ""
    response = client.get("/metrics", headers={"Authorization": "Bearer anything-at-all-here"})
    assert response.status_code == 404


@pytest.mark.django_db
def test_metrics_without_a_token_is_a_401(client: Client, metrics_enabled: None) -> None:
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.django_db
def test_metrics_with_a_wrong_token_is_a_403(client: Client, metrics_enabled: None) -> None:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}x"})
    assert response.status_code == 403
    assert b"readiness_http_requests" not in response.content


@pytest.mark.django_db
def test_metrics_refuses_a_write(client: Client, metrics_enabled: None) -> None:
    response = client.post("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 405


@pytest.mark.django_db
def test_metrics_is_prometheus_text_exposition(client: Client, metrics_enabled: None) -> None:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {
        "readiness_http_requests",
        "readiness_http_request_duration_seconds",
        "readiness_ingest_batches_processed",
        "readiness_ingest_points_processed",
        "readiness_ingest_backlog_batches",
        "readiness_evaluation_duration_seconds",
        "readiness_probes",
        "readiness_notification_failures",
    } <= names


# --- /metrics: the counters move ------------------------------------------------------------------


def test_a_push_moves_the_request_ingest_and_backlog_metrics(
    client: Client, cast: Cast, metrics_enabled: None, django_capture_on_commit_callbacks: Callable
) -> None:
    secret = token_create(project=cast.project, name="ci", scopes=["metrics:write"])[1]
    before = scrape(client)
    # A small push is applied by the request itself: counted at once, nothing waits.
    with django_capture_on_commit_callbacks(execute=True):  # the counters move once it committed
        small = push(client, secret, [{"metric": "latency_ms", "value": float(i)} for i in range(3)])
    assert small.status_code == 202
    applied = scrape(client)
    assert sample(applied, "readiness_ingest_backlog_batches") == 0
    assert sample(applied, "readiness_ingest_points_processed_total") == (
        sample(before, "readiness_ingest_points_processed_total") + 3
    )
    accepted = {"view": "metrics-push", "method": "POST", "status": "202"}
    assert sample(applied, "readiness_http_requests_total", **accepted) == (
        sample(before, "readiness_http_requests_total", **accepted) + 1
    )
    assert sample(applied, "readiness_http_request_duration_seconds_count", view="metrics-push") == (
        sample(before, "readiness_http_request_duration_seconds_count", view="metrics-push") + 1
    )

    # A larger one waits in the outbox for a worker: the backlog shows it until it is applied.
    large = DIRECT_MAX_POINTS + 1
    assert (
        push(client, secret, [{"metric": "latency_ms", "value": float(i)} for i in range(large)]).status_code
        == 202
    )
    assert sample(scrape(client), "readiness_ingest_backlog_batches") == 1
    batches_drain()
    after = scrape(client)
    assert sample(after, "readiness_ingest_backlog_batches") == 0
    assert sample(after, "readiness_ingest_batches_processed_total") == (
        sample(before, "readiness_ingest_batches_processed_total") + 2
    )
    assert sample(after, "readiness_ingest_points_processed_total") == (
        sample(before, "readiness_ingest_points_processed_total") + 3 + large
    )


def test_request_labels_are_view_names_never_paths(client: Client, cast: Cast, metrics_enabled: None) -> None:
    client.get("/no/such/page/12345")
    client.get("/api/v1/projects/some-project-name/")
    exposition = scrape(client)
    assert "12345" not in exposition and "some-project-name" not in exposition
    assert (
        sample(exposition, "readiness_http_requests_total", view="unmatched", method="GET", status="404") >= 1
    )


def test_an_evaluation_is_timed(client: Client, cast: Cast, metrics_enabled: None) -> None:
    before = sample(scrape(client), "readiness_evaluation_duration_seconds_count")
    scorecard_refresh(project=cast.project)
    assert sample(scrape(client), "readiness_evaluation_duration_seconds_count") == before + 1


def test_probe_outcomes_are_counted_up_and_down(
    client: Client, cast: Cast, metrics_enabled: None, live_server: Any
) -> None:
    HealthCheck.objects.create(
        project=cast.project, name="self", url=f"{live_server.url}/healthz", interval=30
    )
    HealthCheck.objects.create(
        project=cast.project,
        name="dead",
        url=f"http://127.0.0.1:{free_port()}/healthz",
        interval=30,
        timeout=2,
    )
    before = scrape(client)
    report = healthchecks_run()
    assert (report.up, report.down) == (1, 1)
    after = scrape(client)
    for outcome in ("up", "down"):
        assert sample(after, "readiness_probes_total", outcome=outcome) == (
            sample(before, "readiness_probes_total", outcome=outcome) + 1
        )


@pytest.mark.django_db
def test_notification_failures_are_counted_by_channel_and_kind(client: Client, metrics_enabled: None) -> None:
    before = scrape(client)
    for failure in ("transient", "permanent", "uncertain"):
        record_notification_failure(channel="webhook", failure=failure)
    after = scrape(client)
    for failure in ("transient", "permanent", "uncertain"):
        labels = {"channel": "webhook", "failure": failure}
        assert sample(after, "readiness_notification_failures_total", **labels) == (
            sample(before, "readiness_notification_failures_total", **labels) + 1
        )
