"""``POST /api/v1/metrics`` over HTTP: status codes, error shape, all-or-nothing, idempotency."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from readiness.api.tokens import PUSH_CALLER_SECONDS, push_callers
from readiness.projects.models import Project, ProjectToken
from readiness.projects.services import token_create, token_revoke
from readiness.telemetry.models import IngestBatch, MetricPoint, RollupDirtyMinute
from readiness.telemetry.rollups.marks import minute_of
from readiness.telemetry.services import DIRECT_MAX_POINTS, batches_apply
from tests.conftest import Cast
from tests.factories import ProjectFactory

URL = "/api/v1/metrics"
POINTS = {
    "points": [
        {"metric": "latency_ms", "value": 182.5, "labels": {"model_version": "7"}},
        {"metric": "accuracy", "value": 0.931},
    ]
}


@pytest.fixture
def secret(cast: Cast) -> str:
    return token_create(project=cast.project, name="ci", scopes=["metrics:write"])[1]


def push(client: Client, body: Any, secret: str | None, **headers: str) -> Any:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    if secret is not None:
        headers["authorization"] = f"Bearer {secret}"
    headers.setdefault("content_type", "application/json")
    content_type = headers.pop("content_type")
    return client.post(URL, raw, content_type=content_type, headers=headers)


def error_code(response: Any) -> str:
    return response.json()["error"]["code"]


def test_a_small_push_is_stored_before_its_202(client: Client, cast: Cast, secret: str) -> None:
    """At most DIRECT_MAX_POINTS points: the request writes them itself, the worker only evaluates."""
    response = push(client, POINTS, secret)
    assert response.status_code == 202
    assert response.json()["accepted"] == 2
    batch = IngestBatch.objects.get(pk=response.json()["batch_id"])
    assert batch.state == "done" and batch.project == cast.project and batch.rows is None
    assert sorted(MetricPoint.objects.filter(project=cast.project).values_list("metric", "value")) == [
        ("accuracy", 0.931),
        ("latency_ms", 182.5),
    ]
    assert MetricPoint.objects.get(metric="latency_ms").labels == {"model_version": "7"}
    assert batches_apply() == 0  # nothing left for the worker to apply: never twice
    assert MetricPoint.objects.count() == 2


def test_a_large_push_is_stored_pending_and_applied_once(client: Client, cast: Cast, secret: str) -> None:
    points = [{"metric": "m", "value": float(i)} for i in range(DIRECT_MAX_POINTS + 1)]
    response = push(client, {"points": points}, secret)
    assert response.status_code == 202
    batch = IngestBatch.objects.get(pk=response.json()["batch_id"])
    assert batch.state == "pending" and batch.project == cast.project
    assert not MetricPoint.objects.exists()
    assert batches_apply(first=batch.pk) == DIRECT_MAX_POINTS + 1
    assert batches_apply(first=batch.pk) == 0  # exactly once
    assert MetricPoint.objects.count() == DIRECT_MAX_POINTS + 1


def test_one_bad_point_rejects_the_whole_batch_with_details(client: Client, cast: Cast, secret: str) -> None:
    body = {"points": [{"metric": "ok", "value": 1}, {"metric": "ok", "value": "high"}]}
    response = push(client, body, secret)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["message"]
    assert error["details"] == [{"index": 1, "field": "value", "message": "must be a number"}]
    assert not IngestBatch.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [b"not json", b'{"points": [{"metric": "m", "value": NaN}]}', b'{"points": []}', b"{}"],
)
def test_invalid_bodies_get_400_and_store_nothing(client: Client, secret: str, raw: bytes) -> None:
    response = push(client, raw, secret)
    assert response.status_code == 400 and error_code(response) == "invalid"
    assert not IngestBatch.objects.exists()


def test_anonymous_push_gets_401(client: Client, cast: Cast) -> None:
    response = push(client, POINTS, None)
    assert response.status_code == 401 and error_code(response) == "unauthenticated"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_unknown_and_revoked_tokens_get_401(client: Client, cast: Cast, secret: str) -> None:
    assert push(client, POINTS, "rdy_not-a-real-token").status_code == 401
    token_revoke(token=ProjectToken.objects.get(name="ci"))
    assert push(client, POINTS, secret).status_code == 401
    assert not IngestBatch.objects.exists()


def test_a_revoked_token_is_refused_once_this_process_stops_keeping_it(
    client: Client, cast: Cast, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each web process keeps the tokens it looked up for PUSH_CALLER_SECONDS: the bound on how long
    a revoked token may still push, in every process."""
    clock = [1_000.0]
    monkeypatch.setattr(push_callers, "clock", lambda: clock[0])
    monkeypatch.setattr(push_callers, "entries", {})
    assert push(client, POINTS, secret).status_code == 202
    token_revoke(token=ProjectToken.objects.get(name="ci"))
    clock[0] += PUSH_CALLER_SECONDS - 0.01
    assert push(client, POINTS, secret).status_code == 202  # still kept: within the bound
    clock[0] += 0.01
    assert push(client, POINTS, secret).status_code == 401
    assert IngestBatch.objects.count() == 2


def test_a_token_without_metrics_write_gets_403(client: Client, cast: Cast) -> None:
    _, read_only = token_create(project=cast.project, name="reader", scopes=["scorecard:read", "attest"])
    response = push(client, POINTS, read_only)
    assert response.status_code == 403 and error_code(response) == "forbidden"


def test_a_logged_in_person_without_a_token_gets_401(client: Client, cast: Cast) -> None:
    client.force_login(cast.admin)
    assert push(client, POINTS, None).status_code == 401


def test_points_land_in_the_tokens_own_project(client: Client, cast: Cast) -> None:
    other = ProjectFactory()
    _, other_secret = token_create(project=other, name="ci", scopes=["metrics:write"])
    assert push(client, POINTS, other_secret).status_code == 202
    assert not MetricPoint.objects.filter(project=cast.project).exists()
    assert MetricPoint.objects.filter(project=other).count() == 2


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_a_body_that_is_not_declared_json_gets_415(client: Client, secret: str, content_type: str) -> None:
    response = push(client, POINTS, secret, content_type=content_type)
    assert response.status_code == 415 and error_code(response) == "unsupported_media_type"


def test_json_with_a_charset_is_accepted(client: Client, secret: str) -> None:
    assert push(client, POINTS, secret, content_type="application/json; charset=utf-8").status_code == 202


def test_a_body_over_5_mib_gets_413(client: Client, secret: str) -> None:
    padding = "x" * 200
    point = {"metric": "m", "value": 1.0, "labels": {f"k{i}": padding for i in range(10)}}
    raw = orjson.dumps({"points": [point] * 2_600})
    assert len(raw) > 5 * 1024 * 1024
    response = push(client, raw, secret)
    assert response.status_code == 413 and error_code(response) == "too_large"
    assert not IngestBatch.objects.exists()


def test_a_wrong_method_gets_405(client: Client, secret: str) -> None:
    response = client.get(URL, headers={"authorization": f"Bearer {secret}"})
    assert response.status_code == 405


@pytest.mark.parametrize("size", [2, DIRECT_MAX_POINTS + 1], ids=["written-by-the-request", "outbox"])
def test_replaying_an_idempotency_key_returns_the_same_batch(client: Client, secret: str, size: int) -> None:
    body = {"points": [{"metric": "m", "value": float(i)} for i in range(size)]}
    first = push(client, body, secret, idempotency_key="run-42")
    batches_apply()
    again = push(client, body, secret, idempotency_key="run-42")
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert IngestBatch.objects.count() == 1
    assert batches_apply() == 0
    assert MetricPoint.objects.count() == size  # stored once


def test_an_idempotency_key_with_another_body_gets_409(client: Client, secret: str) -> None:
    push(client, POINTS, secret, idempotency_key="run-42")
    response = push(client, {"points": [{"metric": "m", "value": 2}]}, secret, idempotency_key="run-42")
    assert response.status_code == 409 and error_code(response) == "conflict"
    assert IngestBatch.objects.count() == 1


def test_idempotency_keys_are_scoped_to_the_project(client: Client, cast: Cast, secret: str) -> None:
    _, other_secret = token_create(project=ProjectFactory(), name="ci", scopes=["metrics:write"])
    push(client, POINTS, secret, idempotency_key="run-42")
    assert (
        push(
            client, {"points": [{"metric": "m", "value": 2}]}, other_secret, idempotency_key="run-42"
        ).status_code
        == 202
    )
    assert IngestBatch.objects.count() == 2


def test_an_overlong_idempotency_key_gets_400(client: Client, secret: str) -> None:
    response = push(client, POINTS, secret, idempotency_key="k" * 201)
    assert response.status_code == 400
    assert response.json()["error"]["details"] == []  # every 400 of a push has a list of details


def test_a_point_with_150000_labels_is_answered_with_one_detail(client: Client, secret: str) -> None:
    point = {"metric": "m", "value": 1.0, "labels": {f"k{i}": "" for i in range(150_000)}}
    response = push(client, {"points": [point]}, secret)
    assert response.status_code == 400
    assert response.json()["error"]["details"] == [
        {"index": 0, "field": "labels", "message": "at most 10 pairs"}
    ]
    assert not IngestBatch.objects.exists()


def test_a_push_of_ten_thousand_bad_points_answers_a_hundred_details(client: Client, secret: str) -> None:
    response = push(client, {"points": [{"metric": "Bad", "value": 1.0}] * 10_000}, secret)
    error = response.json()["error"]
    assert response.status_code == 400
    assert len(error["details"]) == 100
    assert error["message"].endswith("the first 100 problems are listed, and 9,900 more")


def test_the_schema_documents_the_details_of_a_refused_push(client: Client) -> None:
    schema = client.get("/api/v1/schema/", headers={"Accept": "application/json"}).json()
    refused = schema["paths"]["/api/v1/metrics"]["post"]["responses"]["400"]
    assert refused["content"]["application/json"]["schema"]["$ref"].endswith("/PushError")
    details = schema["components"]["schemas"]["PushErrorDetail"]["properties"]["details"]
    assert details["type"] == "array" and details["items"]["$ref"].endswith("/PushProblem")
    assert set(schema["components"]["schemas"]["PushProblem"]["required"]) == {"index", "field", "message"}


def test_a_push_costs_a_bounded_number_of_queries(client: Client, secret: str) -> None:
    push(client, POINTS, secret)  # the first use also records last_used_at
    with CaptureQueriesContext(connection) as queries:
        assert (
            push(
                client, {"points": [{"metric": "m", "value": float(i)} for i in range(1000)]}, secret
            ).status_code
            == 202
        )
    # token lookup, batch insert (plus savepoint bookkeeping): never one query per point
    assert len(queries) <= 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement write is PostgreSQL's")
def test_a_small_push_writes_its_batch_and_points_in_one_statement(client: Client, cast: Cast) -> None:
    secret = token_create(project=cast.project, name="ci", scopes=["metrics:write"])[1]
    push(client, POINTS, secret)  # the token is looked up (and kept) once
    with CaptureQueriesContext(connection) as queries:
        response = push(client, POINTS, secret)
    assert response.status_code == 202
    writes = [query["sql"] for query in queries if "INSERT" in query["sql"]]
    assert len(writes) == 1
    assert "INSERT INTO telemetry_ingestbatch" in writes[0]
    assert "INSERT INTO telemetry_metricpoint" in writes[0]
    # The project's evaluation request rides in the same statement: the push is one round trip.
    assert len(queries) == 1
    assert "UPDATE projects_project SET evaluation_pending" in writes[0]
    batch = IngestBatch.objects.get(pk=response.json()["batch_id"])
    assert batch.state == "done" and MetricPoint.objects.filter(source=batch.source).count() == 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_a_connection_prepares_the_small_push_statement_after_its_fifth_use(
    client: Client, secret: str
) -> None:
    def prepared_pushes() -> int:
        with connection.cursor() as cursor:  # Django's own cursor: bound on the client, never prepared
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                ["%INSERT INTO telemetry_ingestbatch%"],
            )
            return cursor.fetchone()[0]

    for _ in range(4):
        assert push(client, POINTS, secret).status_code == 202
    assert prepared_pushes() == 0
    for _ in range(3):
        assert push(client, POINTS, secret).status_code == 202
    assert prepared_pushes() == 1
    assert MetricPoint.objects.count() == 14  # a prepared write stores like any other


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement write is PostgreSQL's")
def test_a_small_push_requests_its_evaluation_in_its_statement_once_per_burst(
    client: Client, cast: Cast, secret: str
) -> None:
    before = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        assert push(client, POINTS, secret).status_code == 202
    cast.project.refresh_from_db()
    requested_at = cast.project.evaluation_requested_at
    assert cast.project.evaluation_pending is True and requested_at is not None and requested_at >= before
    assert not [q for q in queries if q["sql"].startswith("UPDATE projects_project")]
    assert push(client, POINTS, secret).status_code == 202
    cast.project.refresh_from_db()
    assert cast.project.evaluation_requested_at == requested_at  # rode on the pending request
    # What an evaluation does when it starts: the next push asks again.
    Project.objects.filter(pk=cast.project.pk).update(evaluation_pending=False)
    assert push(client, POINTS, secret).status_code == 202
    cast.project.refresh_from_db()
    assert cast.project.evaluation_pending is True and cast.project.evaluation_requested_at > requested_at


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement write is PostgreSQL's")
def test_a_small_push_into_a_closed_minute_marks_it_in_the_same_statement(client: Client, cast: Cast) -> None:
    secret = token_create(project=cast.project, name="ci", scopes=["metrics:write"])[1]
    late = (timezone.now() - timedelta(minutes=5)).isoformat()
    push(client, {"points": [{"metric": "m", "value": 1.0, "ts": late}]}, secret)
    with CaptureQueriesContext(connection) as queries:
        response = push(client, {"points": [{"metric": "m", "value": 2.0, "ts": late}]}, secret)
    assert response.status_code == 202
    (write,) = [query["sql"] for query in queries if "INSERT" in query["sql"]]
    assert "INSERT INTO telemetry_rollupdirtyminute" in write and "INSERT INTO telemetry_metricpoint" in write
    marked = RollupDirtyMinute.objects.get(project_id=cast.project.pk, metric="m")
    assert marked.minute == minute_of(datetime.fromisoformat(late))
    assert MetricPoint.objects.filter(metric="m").count() == 2


def test_small_pushes_request_one_coalesced_evaluation(client: Client, cast: Cast, secret: str) -> None:
    push(client, POINTS, secret)
    cast.project.refresh_from_db()
    requested_at = cast.project.evaluation_requested_at
    assert cast.project.evaluation_pending is True and requested_at is not None
    for _ in range(2):
        push(client, POINTS, secret)
    # The later pushes ride on the pending request: no second flip, so no second message.
    cast.project.refresh_from_db()
    assert cast.project.evaluation_requested_at == requested_at
    assert MetricPoint.objects.count() == 6


def test_a_large_batch_requests_its_evaluation_when_applied(client: Client, cast: Cast, secret: str) -> None:
    push(client, {"points": [{"metric": "m", "value": 1.0}] * (DIRECT_MAX_POINTS + 1)}, secret)
    cast.project.refresh_from_db()
    assert cast.project.evaluation_pending is False
    assert batches_apply() == DIRECT_MAX_POINTS + 1
    cast.project.refresh_from_db()
    assert cast.project.evaluation_pending is True
